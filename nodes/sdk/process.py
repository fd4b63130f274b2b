"""Running a node as the main job of a process, until SIGTERM or SIGINT.

Example::

    config = NodeConfig(id="echo-1", bus=HostPort("127.0.0.1", 50051))
    asyncio.run(run_node(EchoNode(), config))   # returns after SIGTERM and the drain
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from powerbus.nodes.sdk.config import NodeConfig
from powerbus.nodes.sdk.node import Node
from powerbus.nodes.sdk.runner import NodeRunner

__all__ = ["STOP_SIGNALS", "run_node"]

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def run_node(node: Node, config: NodeConfig) -> None:
    """Serve ``node`` until SIGTERM/SIGINT, then drain and return (exit status 0).

    Raises the registration's error when the bus refuses the node for good (a bad request),
    after draining, so the process exits non-zero with a message.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, _stop_on, stop, sig)
    try:
        async with NodeRunner(node, config=config) as runner:
            waiters: list[asyncio.Task[Any]] = [asyncio.create_task(stop.wait(), name="stop")]
            if runner.registration is not None:
                waiters.append(asyncio.create_task(runner.registration.wait_done()))
            done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for task in done:
                task.result()
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)


def _stop_on(stop: asyncio.Event, sig: signal.Signals) -> None:
    if not stop.is_set():
        log.info("%s received: stopping", sig.name)
    stop.set()
