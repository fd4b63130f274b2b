"""A Modbus TCP line: one connection to one gateway, one request in flight, every
request with a deadline, pymodbus 3.x's socket framer and PDUs as the codec.

>>> line = ModbusLine(HostPort("127.0.0.1", 5020))  # connects on first use
>>> # words = await line.read(meter="M1", unit=1, table=Table.INPUT, address=0x48, count=4)

The exchanges run in the line's callbacks (:mod:`powerbus.adapters.modbus.exchange` says
why); :meth:`ModbusLine.read` awaits one, a poll chains them
(:class:`~powerbus.adapters.modbus.line_poll.ModbusPoll`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from pymodbus.framer import FramerSocket
from pymodbus.pdu import DecodePDU
from pymodbus.pdu.register_message import ReadHoldingRegistersRequest, ReadInputRegistersRequest

from powerbus.adapters.meters.exchange import outcome_of
from powerbus.adapters.meters.line import LineConfig, TcpLine
from powerbus.adapters.meters.watchdog import DeadlineTimer, Watchdog
from powerbus.adapters.modbus.exchange import EXCEPTION_NAMES, ModbusExchange, Outcome, Request
from powerbus.adapters.modbus.registers import Table
from powerbus.bus.kernel.addresses import HostPort

__all__ = ["EXCEPTION_NAMES", "ModbusLine"]

_REQUESTS = {Table.INPUT: ReadInputRegistersRequest, Table.HOLDING: ReadHoldingRegistersRequest}


class ModbusLine:
    """One Modbus TCP connection to one gateway (one RS-485 line); ``timer`` keeps its
    requests' deadlines (shared by the lines of an Acquisition, else its own)."""

    def __init__(
        self,
        gateway: HostPort,
        *,
        config: LineConfig | None = None,
        timer: DeadlineTimer | None = None,
    ) -> None:
        self.gateway = gateway
        self.line = TcpLine(gateway, config=config)
        self.config = self.line.config
        self._framer = FramerSocket(DecodePDU(is_server=False))
        timeout = self.config.request_timeout.total_seconds()
        self.watchdog = Watchdog(timeout, timer=timer)
        """The deadline of the request in flight on the line."""
        self._tid = 0
        # A poll asks the same devices the same reads every round: encoded once, each with
        # its own transaction id (a reply is only taken for the request it answers; after
        # no reply the connection is dropped, so no late reply meets a later request).
        self._requests: dict[tuple[int, Table, int, int], Request] = {}

    async def read(
        self, *, meter: str, unit: int, table: Table, address: int, count: int
    ) -> list[int]:
        """``count`` registers from ``address`` of device ``unit``; raises MeterError."""
        async with self.line.held():
            await self.line.connect(meter)
            return await outcome_of(
                functools.partial(self.begin, meter, unit, table, address, count)
            )

    def request(self, unit: int, table: Table, address: int, count: int) -> Request:
        """A read of ``count`` registers from ``address`` of device ``unit``, encoded
        (kept for the next poll)."""
        key = (unit, table, address, count)
        request = self._requests.get(key)
        if request is None:
            if len(self._requests) >= _REQUESTS_KEPT:
                self._requests.clear()
            pdu_request = _REQUESTS[table](address=address, count=count)
            pdu = pdu_request.function_code.to_bytes(1, "big") + pdu_request.encode()
            self._tid = self._tid % 0xFFFF + 1  # 1..65535: 0 would match any reply
            request = self._requests[key] = Request.of(self._framer, unit, pdu, count, self._tid)
        return request

    def begin(
        self,
        meter: str,
        unit: int,
        table: Table,
        address: int,
        count: int,
        done: Callable[[Outcome], None],
    ) -> ModbusExchange:
        """Start a read now, the line held and connected; ``done`` gets the registers or
        the error."""
        request = self.request(unit, table, address, count)
        exchange = ModbusExchange(self.line, self._framer, self.watchdog, meter, request, done)
        exchange.start()
        return exchange

    def adopt(
        self, meter: str, request: Request, done: Callable[[Outcome], None]
    ) -> ModbusExchange:
        """An exchange taking over ``request``, which a poll sent for ``meter``: the
        reply's framing and checks, and why there is none (the line held)."""
        exchange = ModbusExchange(self.line, self._framer, self.watchdog, meter, request, done)
        exchange.adopt()
        return exchange

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        self.watchdog.close()
        await self.line.close()


_REQUESTS_KEPT = 4096
"""Encoded requests a line keeps (its devices × the reads a poll makes, with room)."""
