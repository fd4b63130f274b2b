"""A poll of one Modbus line: each meter's register blocks and each pulse terminal's
counters, one request after another on the line's callbacks
(:class:`~powerbus.adapters.meters.exchange.LinePoll` says why), decoded into readings
when the poll ends.

The channels of one pulse terminal share one read, made when the first of them comes
up, and its failure is every channel's. A failing meter gets its typed error and the
poll goes on with the next one; it ends early, with what it has, when the connection is
gone (dropped after no reply, or lost: the caller reconnects for the rest) or another
request waits for the line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from powerbus.adapters.meters.driver import ReadScope
from powerbus.adapters.meters.errors import MeterError
from powerbus.adapters.meters.exchange import Job, LinePoll, Polled
from powerbus.adapters.meters.records import MeterReading, MeterSpec, Model, Reading
from powerbus.adapters.modbus.codec import registers_bytes
from powerbus.adapters.modbus.exchange import ModbusExchange
from powerbus.adapters.modbus.readings import channel_reading, decode_block, terminal
from powerbus.adapters.modbus.registers import ReadBlock

if TYPE_CHECKING:
    from powerbus.adapters.modbus.client import ModbusLine
    from powerbus.adapters.modbus.driver import ModbusDriver

__all__ = ["ModbusPoll", "PollPlan", "Result"]

Result = MeterReading | MeterError


@dataclass(slots=True)
class PollPlan:
    """What a poll of the ``meters`` whose ``results`` are still None asks, job by job:
    the job, the meters it answers (several for a terminal's channels), and the blocks
    its requests read."""

    meters: Sequence[MeterSpec]
    results: list[Result | None]
    jobs: list[Job] = field(default_factory=list)
    targets: list[tuple[int, ...]] = field(default_factory=list)
    blocks: list[tuple[ReadBlock, ...]] = field(default_factory=list)

    @classmethod
    def of(
        cls,
        driver: ModbusDriver,
        meters: Sequence[MeterSpec],
        results: list[Result | None],
        scope: ReadScope,
    ) -> PollPlan:
        """The plan of the meters not read yet, in order."""
        plan = cls(meters, results)
        terminals: dict[int, list[int]] = {}
        for index, meter in enumerate(meters):
            if results[index] is None and meter.model is Model.PULSE8:
                terminals.setdefault(meter.unit, []).append(index)
        for index, meter in enumerate(meters):
            if results[index] is not None:
                continue
            if meter.model is Model.PULSE8:
                channels = terminals.pop(meter.unit, None)
                if channels is None:
                    continue  # read with the terminal's first channel
                plan.targets.append(tuple(channels))
            else:
                plan.targets.append((index,))
            job, blocks = driver.job_of(meter, scope)
            plan.jobs.append(job)
            plan.blocks.append(blocks)
        return plan

    def apply(self, polled: Polled) -> None:
        """Decode what ``polled`` got into ``results``."""
        meters, results = self.meters, self.results
        payloads = iter(polled.payloads)
        for answer, targets, blocks in zip(polled.answers, self.targets, self.blocks, strict=False):
            first = meters[targets[0]]
            if isinstance(answer, MeterError):
                results[targets[0]] = answer
                for i in targets[1:]:
                    results[i] = answer.for_meter(meters[i].meter_id)
                continue
            read_at = datetime.fromtimestamp(answer, timezone.utc)
            if first.model is Model.PULSE8:
                counters, status = terminal(next(payloads))
                for i in targets:
                    results[i] = channel_reading(meters[i], counters, status, read_at)
                continue
            readings: list[Reading] = []
            for block in blocks:
                readings += decode_block(block, next(payloads))
            results[targets[0]] = MeterReading(first.meter_id, read_at, tuple(readings))


class ModbusPoll(LinePoll):
    """The jobs of ``plan`` on ``line`` (held and connected by the caller); ``done``
    gets what the line answered, for :meth:`PollPlan.apply`."""

    __slots__ = ("_modbus",)

    def __init__(self, line: ModbusLine, plan: PollPlan, done: Callable[[Polled], None]) -> None:
        super().__init__(line.line, line.watchdog, plan.jobs, done)
        self._modbus = line

    def _adopt(self, request: Any, meter: str, done: Callable[[Any], None]) -> ModbusExchange:
        return self._modbus.adopt(meter, request, done)

    def _payload(self, reply: Any) -> bytes:
        return registers_bytes(reply)
