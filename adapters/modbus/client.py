"""A Modbus TCP line on pymodbus 3.x async: one request in flight, every call with a
deadline, pymodbus exceptions mapped to our error tree here and nowhere else.

>>> line = ModbusLine(HostPort("127.0.0.1", 5020))  # connects on first use
>>> # words = await line.read(meter="M1", unit=1, table=Table.INPUT, address=0x48, count=4)
"""

from __future__ import annotations

import asyncio
import logging

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.pdu import ExceptionResponse, ModbusPDU

from powerbus.adapters.meters.errors import (
    DeviceRejected,
    FrameError,
    FrameProblem,
    GatewayUnreachable,
    MeterError,
    MeterTimeout,
)
from powerbus.adapters.meters.line import LineConfig
from powerbus.adapters.modbus.registers import Table
from powerbus.bus.kernel.addresses import HostPort

__all__ = ["EXCEPTION_NAMES", "ModbusLine"]

log = logging.getLogger(__name__)

EXCEPTION_NAMES = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "server device failure",
    0x05: "acknowledge",
    0x06: "server device busy",
    0x0A: "gateway path unavailable",
    0x0B: "gateway target device failed to respond",
}
_BUSY = {0x05, 0x06}


class ModbusLine:
    """One Modbus TCP connection to one gateway (one RS-485 line)."""

    def __init__(self, gateway: HostPort, *, config: LineConfig | None = None) -> None:
        self.gateway = gateway
        self.config = config or LineConfig()
        self._lock = asyncio.Lock()
        self._client: AsyncModbusTcpClient | None = None
        self._received = 0

    async def read(
        self, *, meter: str, unit: int, table: Table, address: int, count: int
    ) -> list[int]:
        """``count`` registers from ``address`` of device ``unit``; raises MeterError."""
        async with self._lock:
            client = await self._connect(meter)
            self._received = 0
            # The deadline is pymodbus's own (timeout= on the client, one attempt): a
            # second wait_for here would cost a task per request and add nothing.
            try:
                response = await self._call(client, unit, table, address, count)
            except (ModbusException, asyncio.TimeoutError, OSError) as error:
                raise await self._failure(meter, error) from None
            return self._registers(meter, response, count)

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def _call(
        self, client: AsyncModbusTcpClient, unit: int, table: Table, address: int, count: int
    ) -> ModbusPDU:
        if table is Table.INPUT:
            return await client.read_input_registers(address, count=count, device_id=unit)
        return await client.read_holding_registers(address, count=count, device_id=unit)

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self._received += len(data)
        return data

    async def _connect(self, meter: str) -> AsyncModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        await self.close()
        timeout = self.config.request_timeout.total_seconds()
        # retries=0 and no automatic reconnect: retry policy belongs to the caller, and a
        # line must fail fast so the caller's schedule, not pymodbus, decides what is next.
        client = AsyncModbusTcpClient(
            self.gateway.host,
            port=self.gateway.port,
            timeout=timeout,
            retries=0,
            reconnect_delay=0,
            trace_packet=self._trace,
        )
        try:
            ok = await asyncio.wait_for(
                client.connect(), self.config.connect_timeout.total_seconds()
            )
        except (asyncio.TimeoutError, OSError, ModbusException):
            ok = False
        if not ok:
            client.close()
            raise GatewayUnreachable(
                meter=meter, gateway=str(self.gateway), problem="cannot connect"
            )
        self._client = client
        return client

    async def _failure(self, meter: str, error: BaseException) -> MeterError:
        """The typed error for a failed exchange; the connection is dropped so the next
        request starts on a clean stream (Modbus TCP has no frame marker to resync on)."""
        received, gateway = self._received, str(self.gateway)
        await self.close()
        if isinstance(error, (ConnectionException, OSError)):
            return GatewayUnreachable(meter=meter, gateway=gateway, problem=str(error))
        if received:
            return FrameError(
                meter=meter,
                gateway=gateway,
                reason=FrameProblem.GARBAGE,
                problem=f"{received} bytes received, no valid reply",
            )
        return MeterTimeout(meter=meter, gateway=gateway, problem="no reply before the deadline")

    def _registers(self, meter: str, response: ModbusPDU, count: int) -> list[int]:
        gateway = str(self.gateway)
        if isinstance(response, ExceptionResponse) or response.isError():
            code = int(getattr(response, "exception_code", 0))
            name = EXCEPTION_NAMES.get(code, "exception")
            if code == 0x0B:
                return_error: MeterError = MeterTimeout(meter=meter, gateway=gateway, problem=name)
            elif code == 0x0A:
                return_error = GatewayUnreachable(meter=meter, gateway=gateway, problem=name)
            else:
                return_error = DeviceRejected(
                    meter=meter, gateway=gateway, code=code, problem=name, retriable=code in _BUSY
                )
            raise return_error
        registers = list(response.registers)
        if len(registers) != count:
            raise FrameError(
                meter=meter,
                gateway=gateway,
                reason=FrameProblem.TRUNCATED,
                problem=f"{len(registers)} registers, asked for {count}",
            )
        return registers
