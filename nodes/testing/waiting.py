"""Waiting on a condition with a deadline, instead of sleeping a guessed while.

Example::

    await eventually(lambda: runner.load.in_flight == 1, timeout=5, what="a call in flight")
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["eventually", "eventually_sync"]

T = TypeVar("T")


async def eventually(
    check: Callable[[], T | Awaitable[T]],
    *,
    timeout: float,
    interval: float = 0.02,
    what: str = "condition",
) -> T:
    """Call ``check`` (sync or async) until it returns something truthy; return that.
    ``TimeoutError`` naming ``what`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return result
        if loop.time() >= deadline:
            raise TimeoutError(f"{what} not met within {timeout:.1f}s")
        await asyncio.sleep(interval)


def eventually_sync(
    check: Callable[[], T], *, timeout: float, interval: float = 0.02, what: str = "condition"
) -> T:
    """The blocking twin of :func:`eventually`, for synchronous tests."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not met within {timeout:.1f}s")
        time.sleep(interval)
