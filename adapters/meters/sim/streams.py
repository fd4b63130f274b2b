"""A loopback TCP server that owns its connections: the part the farm's gateways and its
control endpoint share.

Subclasses implement :meth:`StreamServer.handle` for one connection; the base registers
the connection's task, ends it on :meth:`StreamServer.close` and closes the socket
however the handler ended.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from typing import Any

__all__ = ["StreamServer"]


class StreamServer(abc.ABC):
    """Listens on a free port; every connection runs :meth:`handle` in a task it owns."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def listen(self, host: str, **options: Any) -> int:
        """Listen on ``host`` with a port chosen by the system; returns the port."""
        self._server = await asyncio.start_server(self._serve, host, 0, **options)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening and end every connection (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    @abc.abstractmethod
    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection until the peer leaves."""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self.handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the peer went away, or we are stopping
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()
