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
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from powerbus.adapters.meters.sim.streams import StreamServer

__all__ = ["ControlServer", "Handler"]

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
_MAX_LINE = 64 * 1024


class ControlServer(StreamServer):
    """Serves JSON-lines requests to ``handler``; errors become ``{"ok": false}`` replies."""

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self._handler = handler

    async def start(self, host: str) -> int:
        """Listen on ``host`` with a free port; returns the port."""
        return await self.listen(host, limit=_MAX_LINE)

    async def stop(self) -> None:
        """Stop listening and end every connection (idempotent)."""
        await self.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                writer.write(json.dumps(await self._handle(line)).encode() + b"\n")
                await writer.drain()
        except ValueError:
            pass  # an over-long line: the connection ends

    async def _handle(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("a request is a JSON object")
            return {"ok": True, **await self._handler(request)}
        except Exception as error:  # every failure is the caller's answer
            log.info("control request failed: %s", error)
            return {"ok": False, "error": f"{type(error).__name__}: {error}"}
