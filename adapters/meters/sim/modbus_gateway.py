"""A simulated Modbus TCP gateway to an RS-485 line of SDM meters and pulse terminals.

The devices are served by a real pymodbus ``ModbusTcpServer`` (``SimDevice``s whose
``action`` fills the registers from the simulated meters at read time) on a private
loopback port. In front of it sits the gateway: the port clients use, which passes one
request at a time to the line, holds it for the RTU frames' wire time, and injects the
line's faults (silence, garbage) the way a real gateway would pass them on.

>>> # gateway = ModbusGateway(devices=[...], line=SerialLine(baud=9600), clock=clock)
>>> # port = await gateway.start("127.0.0.1"); ...; await gateway.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from powerbus.adapters.meters.sim.clock import SimClock
from powerbus.adapters.meters.sim.faults import Fault
from powerbus.adapters.meters.sim.modbus_meter import PulseTerminal, SdmDevice, comm_faults
from powerbus.adapters.meters.sim.serial import SerialLine
from powerbus.adapters.meters.sim.streams import StreamServer

__all__ = ["ModbusGateway"]

log = logging.getLogger(__name__)

_MBAP = 7
_RTU_OVERHEAD = 2  # an RTU frame is unit + PDU + CRC16; MBAP's length counts unit + PDU
Device = SdmDevice | PulseTerminal


class ModbusGateway(StreamServer):
    """One Modbus line: the client-facing gateway port and the pymodbus device server."""

    def __init__(
        self, *, devices: list[Device], line: SerialLine, clock: SimClock, seed: int = 0
    ) -> None:
        super().__init__()
        self.devices = {d.unit: d for d in devices}
        self.line = line
        self.clock = clock
        self._rng = random.Random(seed)
        self._backend: ModbusTcpServer | None = None
        self._backend_port = 0
        self._upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def start(self, host: str) -> int:
        """Start the device server and the gateway port; returns the gateway's port."""
        sim_devices = [
            SimDevice(
                id=unit,
                simdata=[SimData(0, count=_size(d), values=0, datatype=DataType.REGISTERS)],
                action=functools.partial(self._fill, d),
            )
            for unit, d in self.devices.items()
        ]
        self._backend = ModbusTcpServer(sim_devices, address=("127.0.0.1", 0))
        await self._backend.serve_forever(background=True)
        # pymodbus keeps the listening server as its transport (asyncio's or uvloop's)
        listener: Any = self._backend.transport
        self._backend_port = int(listener.sockets[0].getsockname()[1])
        self._upstream = await asyncio.open_connection("127.0.0.1", self._backend_port)
        return await self.listen(host)

    async def stop(self) -> None:
        """Stop both servers and every connection (idempotent)."""
        await self.close()
        upstream, self._upstream = self._upstream, None
        if upstream is not None:
            upstream[1].close()
            with contextlib.suppress(ConnectionError):
                await upstream[1].wait_closed()
        backend, self._backend = self._backend, None
        if backend is not None:
            await backend.shutdown()  # type: ignore[no-untyped-call]

    async def _fill(
        self,
        device: Device,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus ``action``: put the device's values at read time into its registers."""
        if Fault.EXCEPTION in comm_faults(device):
            return ExcCodes.DEVICE_FAILURE
        if values is not None:
            return ExcCodes.ILLEGAL_FUNCTION  # meters' measured values are read-only
        registers[:] = device.image(self.clock.epoch())
        return None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            header = await reader.readexactly(_MBAP)
            length = int.from_bytes(header[4:6], "big")
            if header[2:4] != b"\0\0" or not 2 <= length <= 254:
                return  # not Modbus TCP: a real gateway drops such a connection
            pdu = await reader.readexactly(length - 1)
            reply = await self._exchange(header + pdu)
            if reply:
                writer.write(reply)
                await writer.drain()

    async def _exchange(self, request: bytes) -> bytes:
        if self.line.is_cut:
            return b""
        device = self.devices.get(request[6])
        loop = asyncio.get_running_loop()
        request_bytes = len(request) - _MBAP + 1 + _RTU_OVERHEAD
        async with self.line.lock:
            started = loop.time()
            faults = comm_faults(device) if device is not None else {Fault.NO_ANSWER}
            if Fault.NO_ANSWER in faults:
                await self.line.occupy(started, request_bytes, 0)
                return b""
            reply = await self._forward(request)
            await self.line.occupy(started, request_bytes, len(reply) - _MBAP + 1 + _RTU_OVERHEAD)
            if Fault.GARBAGE in faults:
                return self._rng.randbytes(len(reply))
            return reply

    async def _forward(self, request: bytes) -> bytes:
        assert self._upstream is not None
        reader, writer = self._upstream
        writer.write(request)
        await writer.drain()
        header = await asyncio.wait_for(reader.readexactly(_MBAP), 5.0)
        body = await asyncio.wait_for(
            reader.readexactly(int.from_bytes(header[4:6], "big") - 1), 5.0
        )
        return header + body


def _size(device: Device) -> int:
    return 0x50 if isinstance(device, SdmDevice) else 0x11
