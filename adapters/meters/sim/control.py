"""The farm's control endpoint: JSON lines over TCP on loopback, one request per line,
one reply per line (``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``).

Operations::

    {"op": "now"}                                        simulated UTC time
    {"op": "fault", "meter": ID, "fault": KIND, "arg": X}  inject (KIND as in --faults)
    {"op": "clear", "meter": ID}                         end the meter's faults
    {"op": "cut", "gateway": "HOST:PORT", "seconds": S}  cut a line for S simulated
                                                         seconds (omit: until restore)
    {"op": "restore", "gateway": "HOST:PORT"}
    {"op": "registers", "meter": ID, "at": ISO}          forward/reverse (total, rates)
    {"op": "profile", "meter": ID, "start": ISO, "count": N}
                                                         15-min records the meter stored
    {"op": "freeze", "meter": ID, "day": N}              the N-th last daily freeze
    {"op": "stats"}                                      per line: exchanges, busy seconds

ISO times with an offset are absolute; naive ones are the meters' local time (UTC+8).

>>> # reader, writer = await asyncio.open_connection(*control_address)
>>> # writer.write(b'{"op": "fault", "meter": "M00003", "fault": "garbage"}\\n')
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["ControlServer", "Handler"]

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
_MAX_LINE = 64 * 1024


class ControlServer:
    """Serves JSON-lines requests to ``handler``; errors become ``{"ok": false}`` replies."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, host: str) -> int:
        """Listen on ``host`` with a free port; returns the port."""
        self._server = await asyncio.start_server(self._serve, host, 0, limit=_MAX_LINE)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and end every connection (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while line := await reader.readline():
                writer.write(json.dumps(await self._handle(line)).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, ValueError, asyncio.CancelledError):
            pass  # client went away, sent an over-long line, or we are stopping
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _handle(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("a request is a JSON object")
            return {"ok": True, **await self._handler(request)}
        except Exception as error:  # every failure is the caller's answer
            log.info("control request failed: %s", error)
            return {"ok": False, "error": f"{type(error).__name__}: {error}"}
