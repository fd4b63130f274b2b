"""Live updates for browsers: one message a second to every open Server-Sent Events stream.

The monitor publishes the newest overview once per tick (and only builds it while
someone listens); each stream sends it as an SSE ``data:`` line. Closing the broadcaster
ends every stream, so the HTTP server can stop.

>>> b = Broadcaster()
>>> b.publish('{"now": 1}'); b.subscribers
0
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

__all__ = ["Broadcaster"]

_KEEPALIVE_S = 15.0


class Broadcaster:
    """Fan-out of the latest message to any number of SSE streams."""

    def __init__(self) -> None:
        self._message = ""
        self._event = asyncio.Event()
        self._closed = False
        self.subscribers = 0
        """Streams open now."""

    def publish(self, message: str) -> None:
        """Make ``message`` (JSON text) the latest and wake every stream."""
        self._message = message
        event, self._event = self._event, asyncio.Event()
        event.set()

    def close(self) -> None:
        """End every stream; later streams end at once. Idempotent."""
        self._closed = True
        self._event.set()

    async def stream(self) -> AsyncIterator[str]:
        """SSE text: the latest message now (if any), then each one published."""
        self.subscribers += 1
        try:
            if self._message:
                yield _event(self._message)
            while not self._closed:
                event = self._event
                try:
                    await asyncio.wait_for(event.wait(), _KEEPALIVE_S)
                except asyncio.TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if self._closed:
                    return
                yield _event(self._message)
        finally:
            self.subscribers -= 1


def _event(message: str) -> str:
    return f"event: live\ndata: {message}\n\n"
