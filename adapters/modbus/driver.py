"""Reading a Modbus meter or pulse channel into a :class:`MeterReading` (domain side).

>>> driver = ModbusDriver(HostPort("127.0.0.1", 5020))
>>> # reading = await driver.read(spec, scope=ReadScope.ENERGY)
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timezone

from powerbus.adapters.meters.driver import ReadScope
from powerbus.adapters.meters.errors import GatewayUnreachable, MeterError
from powerbus.adapters.meters.exchange import Job, Polled, resolver
from powerbus.adapters.meters.line import LineConfig
from powerbus.adapters.meters.records import MeterReading, MeterSpec, Model, Reading
from powerbus.adapters.meters.watchdog import DeadlineTimer
from powerbus.adapters.modbus.client import ModbusLine
from powerbus.adapters.modbus.codec import registers_bytes
from powerbus.adapters.modbus.line_poll import ModbusPoll, PollPlan, Result
from powerbus.adapters.modbus.readings import (
    TERMINAL_BLOCK,
    channel_reading,
    decode_block,
    register_map,
    terminal,
)
from powerbus.adapters.modbus.registers import PULSE8, ReadBlock, plan
from powerbus.bus.kernel.addresses import HostPort

__all__ = ["ModbusDriver"]


class ModbusDriver:
    """The :class:`~powerbus.adapters.meters.driver.MeterDriver` of one Modbus TCP line."""

    def __init__(
        self,
        gateway: HostPort,
        *,
        config: LineConfig | None = None,
        timer: DeadlineTimer | None = None,
    ) -> None:
        self.gateway = gateway
        self.line = ModbusLine(gateway, config=config, timer=timer)
        self._plans: dict[tuple[Model, ReadScope], tuple[ReadBlock, ...]] = {}
        self._jobs: dict[tuple[str, str, Model, ReadScope], tuple[Job, tuple[ReadBlock, ...]]] = {}

    async def read(self, meter: MeterSpec, *, scope: ReadScope = ReadScope.FULL) -> MeterReading:
        """Read one meter or pulse channel."""
        if meter.model is Model.PULSE8:
            counters, status = await self.read_terminal(meter)
            return channel_reading(meter, counters, status, datetime.now(timezone.utc))
        table = register_map(meter).table
        readings: list[Reading] = []
        for block in self.plan_of(meter, scope):
            words = await self.line.read(
                meter=meter.meter_id,
                unit=meter.unit,
                table=table,
                address=block.address,
                count=block.count,
            )
            readings += decode_block(block, registers_bytes(words))
        return MeterReading(meter.meter_id, datetime.now(timezone.utc), tuple(readings))

    async def read_terminal(self, meter: MeterSpec) -> tuple[tuple[int, ...], int]:
        """All eight counters and the wire-break mask of the terminal ``meter`` is on."""
        words = await self.line.read(
            meter=meter.meter_id,
            unit=meter.unit,
            table=PULSE8.table,
            address=TERMINAL_BLOCK.address,
            count=TERMINAL_BLOCK.count,
        )
        return terminal(registers_bytes(words))

    async def read_many(
        self, meters: Sequence[MeterSpec], *, scope: ReadScope = ReadScope.ENERGY
    ) -> list[MeterReading | MeterError]:
        """Read ``meters`` in order, chained in the line's callbacks (:class:`ModbusPoll`)
        and decoded when a poll ends; the channels of one pulse terminal share one read
        (made when the first of them comes up), and its failure is every channel's."""
        results: list[Result | None] = [None] * len(meters)
        loop = asyncio.get_running_loop()
        line = self.line.line
        while None in results:
            # The poll gives the line up when another request waits for it, and stops
            # where the connection went: this loop takes it again, reconnecting.
            async with line.held():
                try:
                    await line.connect(meters[results.index(None)].meter_id)
                except GatewayUnreachable as error:
                    self._fail_next(meters, results, error)
                    continue
                plan = PollPlan.of(self, meters, results, scope)
                polled: asyncio.Future[Polled] = loop.create_future()
                poll = ModbusPoll(self.line, plan, resolver(polled))
                poll.start()
                try:
                    plan.apply(await polled)
                finally:
                    poll.abandon()
        return [r for r in results if r is not None]

    def plan_of(self, meter: MeterSpec, scope: ReadScope) -> tuple[ReadBlock, ...]:
        """The register blocks a read of ``meter`` with ``scope`` asks for."""
        key = (meter.model, scope)
        if key not in self._plans:
            model = register_map(meter)
            wanted = model.energy_registers if scope is ReadScope.ENERGY else model.registers
            self._plans[key] = plan(wanted)
        return self._plans[key]

    def job_of(self, meter: MeterSpec, scope: ReadScope) -> tuple[Job, tuple[ReadBlock, ...]]:
        """What a poll asks ``meter`` (its terminal, for a pulse channel), and the blocks
        its requests read (kept for the next poll)."""
        key = (meter.meter_id, meter.address, meter.model, scope)
        held = self._jobs.get(key)
        if held is None:
            if len(self._jobs) >= _JOBS_KEPT:
                self._jobs.clear()
            if meter.model is Model.PULSE8:
                blocks: tuple[ReadBlock, ...] = (TERMINAL_BLOCK,)
                table = PULSE8.table
            else:
                blocks, table = self.plan_of(meter, scope), register_map(meter).table
            requests = tuple(
                self.line.request(meter.unit, table, block.address, block.count) for block in blocks
            )
            held = self._jobs[key] = (Job(meter.meter_id, requests), blocks)
        return held

    async def close(self) -> None:
        """Close the line's connection (idempotent)."""
        await self.line.close()

    @staticmethod
    def _fail_next(
        meters: Sequence[MeterSpec], results: list[Result | None], error: MeterError
    ) -> None:
        """``error`` for the next meter not read (and the other channels of its terminal)."""
        index = results.index(None)
        first = meters[index]
        results[index] = error
        if first.model is Model.PULSE8:
            for i in range(index + 1, len(meters)):
                if meters[i].model is Model.PULSE8 and meters[i].unit == first.unit:
                    results[i] = error.for_meter(meters[i].meter_id)


_JOBS_KEPT = 4096
"""Poll jobs a driver keeps (a line's meters, with room)."""
