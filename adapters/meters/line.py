"""A line: one TCP connection to one serial gateway, one request in flight at a time.

An RS-485 line has one master, so every request on it is serialised by the line's lock;
different lines run in parallel because each has its own connection and lock. Every
network await has a deadline from :class:`LineConfig`.

>>> LineConfig().request_timeout.total_seconds()
1.0
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import timedelta

from powerbus.adapters.meters.errors import GatewayUnreachable
from powerbus.bus.kernel.addresses import HostPort

__all__ = ["LineConfig", "TcpLine"]

_CHUNK = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class LineConfig:
    """Deadlines of a line.

    ``request_timeout`` covers one exchange once the line is ours (request and reply on
    the wire plus the meter's turnaround), not the wait for the line; wrap a call in
    ``asyncio.wait_for`` for an overall deadline.
    """

    connect_timeout: timedelta = timedelta(seconds=2)
    request_timeout: timedelta = timedelta(seconds=1)


class TcpLine:
    """The byte transport of a transparent serial gateway (used by DL/T 645).

    Callers hold :attr:`lock` around a request and its reply; :meth:`read_some` returns
    what arrived before a deadline. The connection is opened lazily and dropped by
    :meth:`reset` after an error, so the next request starts on a clean stream.
    """

    def __init__(self, gateway: HostPort, *, config: LineConfig | None = None) -> None:
        self.gateway = gateway
        self.config = config or LineConfig()
        self.lock = asyncio.Lock()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def send(self, data: bytes, *, meter: str) -> None:
        """Write ``data``, connecting first if needed."""
        writer = await self._connect(meter)
        try:
            writer.write(data)
            await asyncio.wait_for(writer.drain(), self.config.request_timeout.total_seconds())
        except (OSError, asyncio.TimeoutError) as error:
            await self.reset()
            raise GatewayUnreachable(
                meter=meter, gateway=str(self.gateway), problem=f"send failed: {error!r}"
            ) from None

    async def read_some(self, *, deadline: float, meter: str) -> bytes:
        """Bytes that arrive before ``deadline`` (loop time); b"" when none did."""
        reader = self._reader
        if reader is None:
            raise GatewayUnreachable(
                meter=meter, gateway=str(self.gateway), problem="not connected"
            )
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return b""
        try:
            data = await asyncio.wait_for(reader.read(_CHUNK), remaining)
        except asyncio.TimeoutError:
            return b""
        except OSError as error:
            await self.reset()
            raise GatewayUnreachable(
                meter=meter, gateway=str(self.gateway), problem=f"read failed: {error!r}"
            ) from None
        if not data:
            await self.reset()
            raise GatewayUnreachable(
                meter=meter, gateway=str(self.gateway), problem="gateway closed the connection"
            )
        return data

    async def reset(self) -> None:
        """Drop the connection; the next request reconnects."""
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            # The socket is closed either way; a peer's reset is not our error.
            with contextlib.suppress(OSError, asyncio.TimeoutError):
                await asyncio.wait_for(
                    writer.wait_closed(), self.config.connect_timeout.total_seconds()
                )

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        await self.reset()

    async def _connect(self, meter: str) -> asyncio.StreamWriter:
        if self._writer is not None and not self._writer.is_closing():
            return self._writer
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.gateway.host, self.gateway.port),
                self.config.connect_timeout.total_seconds(),
            )
        except (OSError, asyncio.TimeoutError) as error:
            raise GatewayUnreachable(
                meter=meter, gateway=str(self.gateway), problem=f"cannot connect: {error!r}"
            ) from None
        self._reader, self._writer = reader, writer
        return writer
