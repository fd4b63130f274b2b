"""A simulated transparent serial gateway with DL/T 645-2007 meters behind it: a TCP
server that passes frames to the meters on its line and their replies back, with the
line's timing and the meters' faults.

>>> # gateway = Dlt645Gateway(meters={...}, line=SerialLine(baud=9600), clock=clock)
>>> # port = await gateway.start("127.0.0.1"); ...; await gateway.stop()
"""

from __future__ import annotations

import asyncio
import logging
import random

from powerbus.adapters.dlt645.bcd import BcdError, decode_datetime
from powerbus.adapters.dlt645.frame import BROADCAST, Control, Frame, FrameDecoder
from powerbus.adapters.meters.sim.clock import SimClock, to_epoch
from powerbus.adapters.meters.sim.dlt645_meter import OTHER_ERROR, answer
from powerbus.adapters.meters.sim.faults import Fault
from powerbus.adapters.meters.sim.meter import SimMeter
from powerbus.adapters.meters.sim.serial import SerialLine
from powerbus.adapters.meters.sim.streams import StreamServer

__all__ = ["Dlt645Gateway"]

log = logging.getLogger(__name__)

_PREAMBLE = 4  # the master's wake-up bytes, counted in the request's wire time


class Dlt645Gateway(StreamServer):
    """One line of DL/T 645 meters behind one TCP port."""

    def __init__(
        self, *, meters: dict[str, SimMeter], line: SerialLine, clock: SimClock, seed: int = 0
    ) -> None:
        super().__init__()
        self.meters = meters  # by 12-digit address
        self.line = line
        self.clock = clock
        self._rng = random.Random(seed)

    async def start(self, host: str) -> int:
        """Listen on ``host`` (port chosen by the system); returns the port."""
        return await self.listen(host)

    async def stop(self) -> None:
        """Stop listening and end every connection (idempotent)."""
        await self.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder()
        while data := await reader.read(4096):
            for event in decoder.feed(data):
                if isinstance(event, Frame) and not event.is_reply:
                    await self._exchange(event, writer)

    async def _exchange(self, request: Frame, writer: asyncio.StreamWriter) -> None:
        if self.line.is_cut:
            return
        loop = asyncio.get_running_loop()
        request_bytes = _PREAMBLE + 12 + len(request.data)
        async with self.line.lock:
            started = loop.time()
            reply = self._reply(request)
            await self.line.occupy(started, request_bytes, len(reply))
            if reply:
                writer.write(reply)
                await writer.drain()

    def _reply(self, request: Frame) -> bytes:
        """The bytes the line carries back (empty when nobody answers)."""
        if request.address == BROADCAST and request.control == Control.BROADCAST_TIME:
            self._set_clocks(request.data)
            return b""
        meter = self.meters.get(request.address)
        if meter is None or Fault.NO_ANSWER in meter.comm:
            return b""
        preamble = meter.seed % 5  # slaves send 0-4 wake-up bytes, depending on the make
        if request.control == Control.RELAY:
            return self._relay(meter, request).encode(preamble=preamble)
        if request.control != Control.READ:
            return b""
        if Fault.EXCEPTION in meter.comm:
            data: bytes | int = OTHER_ERROR
        else:
            data = answer(meter, int.from_bytes(request.data[:4], "little"), request.data[4:],
                          t=self.clock.epoch())  # fmt: skip
        if isinstance(data, int):
            reply = Frame(request.address, Control.READ_ERROR, bytes((data,)))
        else:
            reply = Frame(request.address, Control.READ_REPLY, request.data[:4] + data)
        raw = reply.encode(preamble=preamble)
        if Fault.GARBAGE in meter.comm:
            return self._rng.randbytes(len(raw))
        return raw

    def _relay(self, meter: SimMeter, request: Frame) -> Frame:
        """Trip (1AH) or close (1CH) the meter's switch; another N1 is refused."""
        action = request.data[8] if len(request.data) >= 16 else -1
        if action not in (0x1A, 0x1C):
            return Frame(request.address, Control.RELAY_ERROR, bytes((OTHER_ERROR,)))
        meter.relay_open = action == 0x1A
        return Frame(request.address, Control.RELAY_REPLY, b"")

    def _set_clocks(self, data: bytes) -> None:
        try:
            when = decode_datetime(data[:6], "YMDhms")
        except BcdError:
            return
        offset = to_epoch(when) - self.clock.epoch()
        for meter in self.meters.values():
            meter.clock_offset = offset
