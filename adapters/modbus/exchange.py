"""One Modbus TCP request in flight on a line, driven by the line's own callbacks.

pymodbus is the codec: its socket framer frames the request and decodes the reply into a
PDU. The transport is the line's (:class:`~powerbus.adapters.meters.line.TcpLine`) and
the deadline the line's :class:`~powerbus.adapters.meters.watchdog.Watchdog`, so an
exchange creates no future, task or timer (:mod:`powerbus.adapters.meters.exchange`):
pymodbus's own client awaits a future under a lock and ``wait_for`` for every request,
about 160 Python calls an exchange, and on a mostly idle loop that Python is most of what
an exchange costs (docs/metering.md, Benchmark). Modbus TCP has no frame marker to
resynchronise on: after no reply, or bytes that never make one, the exchange drops the
connection and the next request reconnects.
"""

from __future__ import annotations

from collections.abc import Callable

from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerSocket
from pymodbus.pdu import ExceptionResponse, ModbusPDU

from powerbus.adapters.meters.errors import (
    DeviceRejected,
    FrameError,
    FrameProblem,
    GatewayUnreachable,
    MeterError,
    MeterTimeout,
)
from powerbus.adapters.meters.exchange import LineExchange
from powerbus.adapters.meters.line import TcpLine
from powerbus.adapters.meters.watchdog import Watchdog

__all__ = ["EXCEPTION_NAMES", "ModbusExchange", "Outcome"]

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

Outcome = list[int] | MeterError
"""How a read ends: the registers asked for, or why there are none."""


class ModbusExchange(LineExchange[list[int]]):
    """A read of ``count`` registers from device ``unit`` on ``line`` (connected, and
    held by the caller); ``request`` is (unit, the PDU's function code and data, count,
    transaction id).

    :meth:`start` sends it; ``done`` is called once, from the line's callbacks or the
    deadline's timer; :meth:`abandon` ends it without calling ``done``.
    """

    __slots__ = ("_buffer", "_count", "_framer", "_pdu", "_received", "_tid", "_unit")

    def __init__(
        self,
        line: TcpLine,
        framer: FramerSocket,
        watchdog: Watchdog,
        meter: str,
        request: tuple[int, bytes, int, int],
        done: Callable[[Outcome], None],
    ) -> None:
        super().__init__(line, watchdog, meter, done)
        self._framer = framer
        self._unit, self._pdu, self._count, self._tid = request
        self._buffer = b""
        self._received = 0

    def start(self) -> None:
        """Send the request and wait (in callbacks) for its answer or its deadline."""
        self._listen()
        self._line.write(self._framer.encode(self._pdu, self._unit, self._tid))

    def _receive(self, data: bytes) -> None:
        self._received += len(data)
        buffer = self._buffer + data if self._buffer else data
        try:
            used, pdu = self._framer.handleFrame(buffer, self._unit, self._tid)
        except ModbusException as bad:  # a frame whose PDU does not decode
            self._line.drop()
            self._finish(self._frame_error(FrameProblem.GARBAGE, str(bad)))
            return
        if pdu is None:
            self._buffer = buffer[used:]  # a reply still arriving, or not one of ours
            return
        self._finish(self._registers(pdu))

    def _expire(self) -> None:
        self._line.drop()  # whatever comes late would be taken for the next reply
        if self._received:
            problem = f"{self._received} bytes received, no valid reply"
            self._finish(self._frame_error(FrameProblem.GARBAGE, problem))
        else:
            problem = "no reply before the deadline"
            self._finish(MeterTimeout(meter=self._meter, gateway=self._gateway, problem=problem))

    def _frame_error(self, reason: FrameProblem, problem: str) -> FrameError:
        return FrameError(meter=self._meter, gateway=self._gateway, reason=reason, problem=problem)

    def _registers(self, response: ModbusPDU) -> Outcome:
        meter, gateway = self._meter, self._gateway
        if isinstance(response, ExceptionResponse) or response.isError():
            code = int(getattr(response, "exception_code", 0))
            name = EXCEPTION_NAMES.get(code, "exception")
            if code == 0x0B:
                return MeterTimeout(meter=meter, gateway=gateway, problem=name)
            if code == 0x0A:
                return GatewayUnreachable(meter=meter, gateway=gateway, problem=name)
            return DeviceRejected(
                meter=meter, gateway=gateway, code=code, problem=name, retriable=code in _BUSY
            )
        registers = list(response.registers)
        if len(registers) != self._count:
            problem = f"{len(registers)} registers, asked for {self._count}"
            return self._frame_error(FrameProblem.TRUNCATED, problem)
        return registers
