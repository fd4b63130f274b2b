"""Running a long-lived service as a process: start, wait for SIGTERM/SIGINT, stop, exit 0."""

from __future__ import annotations

import abc
import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

__all__ = ["Lifecycle", "Service", "run_event_loop", "run_until_signalled"]

log = logging.getLogger(__name__)


class Service(Protocol):
    """Anything with an idempotent async start/stop pair."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


L = TypeVar("L", bound="Lifecycle")
T = TypeVar("T")


class Lifecycle(abc.ABC):
    """Base of objects that own tasks or sockets: ``start()``/``stop()`` and ``async with``.

    >>> # async with BusServer(config=cfg) as bus: ...   # start() on entry, stop() on exit
    """

    @abc.abstractmethod
    async def start(self) -> None:
        """Acquire resources and start background work."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Release everything; idempotent, safe after a failed start."""

    async def __aenter__(self: L) -> L:
        await self.start()
        return self

    async def __aexit__(self, *_exc_info: object) -> None:
        await self.stop()


def run_until_signalled(make: Callable[[], Service]) -> int:
    """Start the service ``make()`` returns, run until SIGTERM or SIGINT, stop it cleanly.

    Returns the process exit status: 0 after a clean stop on a signal.
    """
    return run_event_loop(_run(make))


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on uvloop where it is installed, else on asyncio's loop.

    A routed call is mostly event-loop work (gRPC's completions, the node link's socket),
    and uvloop's loop, written in C, does it for less CPU than the pure-Python one.
    """
    try:
        import uvloop
    except ImportError:  # not built for this platform: the standard loop does the same
        return asyncio.run(main)
    return uvloop.run(main)


async def _run(make: Callable[[], Service]) -> int:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    service = make()
    try:
        await service.start()
        await stopping.wait()
        log.info("signal received, stopping")
    finally:
        await service.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return 0
