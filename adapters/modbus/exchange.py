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

import struct
from collections.abc import Callable
from dataclasses import dataclass

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

__all__ = ["EXCEPTION_NAMES", "MAX_ADU", "ModbusExchange", "Outcome", "Request"]

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
MAX_ADU = 260
"""The longest Modbus TCP frame (MBAP header and PDU): more bytes than that waiting for a
reply are no reply."""
_MBAP = struct.Struct(">HHHBBB")  # transaction, protocol 0, length, unit; function, bytes

Outcome = list[int] | MeterError
"""How a read ends: the registers asked for, or why there are none."""


@dataclass(frozen=True, slots=True)
class Request:
    """A read of ``count`` registers from device ``unit``, ready to send: the PDU
    (function code and data), the transaction id, the bytes on the wire, and the head of
    the normal reply (MBAP header, function code, byte count); a poll sends the same ones
    every round, made once. A :class:`~powerbus.adapters.meters.exchange.PollRequest`."""

    unit: int
    pdu: bytes
    count: int
    tid: int
    wire: bytes
    head: bytes

    @classmethod
    def of(cls, framer: FramerSocket, unit: int, pdu: bytes, count: int, tid: int) -> Request:
        """The read ``pdu`` of ``count`` registers to ``unit`` as transaction ``tid``."""
        size = 2 * count
        head = _MBAP.pack(tid, 0, size + 3, unit, pdu[0], size)
        return cls(unit, pdu, count, tid, framer.encode(pdu, unit, tid), head)

    def match(self, data: bytes) -> bytes | None:
        """The registers' bytes when ``data`` is exactly the normal reply, whole."""
        if len(data) == _MBAP.size + 2 * self.count and data.startswith(self.head):
            return data[_MBAP.size :]
        return None


class ModbusExchange(LineExchange[list[int]]):
    """``request`` on ``line`` (connected, and held by the caller).

    :meth:`start` sends it (or :meth:`adopt` takes it over from a poll); ``done`` is
    called once, from the line's callbacks or the deadline's timer; :meth:`abandon` ends
    it without calling ``done``.
    """

    __slots__ = ("_buffer", "_framer", "_received", "_request")

    def __init__(
        self,
        line: TcpLine,
        framer: FramerSocket,
        watchdog: Watchdog,
        meter: str,
        request: Request,
        done: Callable[[Outcome], None],
    ) -> None:
        super().__init__(line, watchdog, meter, done)
        self._framer = framer
        self._request = request
        self._buffer = b""
        self._received = 0

    @property
    def wire(self) -> bytes:
        """The request's bytes on the wire."""
        return self._request.wire

    def receive(self, data: bytes) -> None:
        """Bytes from the line: the reply (possibly in pieces), or not one."""
        self._received += len(data)
        buffer = self._buffer + data if self._buffer else data
        request = self._request
        try:
            used, pdu = self._framer.handleFrame(buffer, request.unit, request.tid)
        except ModbusException as bad:  # a frame whose PDU does not decode
            self._line.drop()
            self._finish(self._frame_error(FrameProblem.GARBAGE, str(bad)))
            return
        if pdu is not None:
            self._finish(self._registers(pdu))
        elif len(buffer) - used > MAX_ADU:
            self._line.drop()
            problem = f"{self._received} bytes received, none a reply"
            self._finish(self._frame_error(FrameProblem.GARBAGE, problem))
        else:
            self._buffer = buffer[used:]  # a reply still arriving, or not one of ours

    def expire(self) -> None:
        """No reply by the deadline: the connection is dropped (whatever came late would
        be taken for the next reply)."""
        self._line.drop()
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
        if len(registers) != self._request.count:
            problem = f"{len(registers)} registers, asked for {self._request.count}"
            return self._frame_error(FrameProblem.TRUNCATED, problem)
        return registers
