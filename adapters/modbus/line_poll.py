"""A poll of one Modbus line: each meter's register blocks and each pulse terminal's
counters, one exchange after another, the next started from the callback that ended the
one before (:mod:`powerbus.adapters.modbus.exchange` says why).

A failing meter gets its typed error and the poll goes on with the next one; it ends
early, with what it has, when the connection is gone (dropped after no reply, or lost:
the caller reconnects for the rest) or when another request waits for the line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from powerbus.adapters.meters.driver import ReadScope
from powerbus.adapters.meters.errors import MeterError
from powerbus.adapters.meters.exchange import LinePoll
from powerbus.adapters.meters.records import MeterReading, MeterSpec, Model, Reading
from powerbus.adapters.modbus.exchange import Outcome
from powerbus.adapters.modbus.readings import (
    TERMINAL_BLOCK,
    channel_reading,
    decode_block,
    register_map,
    terminal,
)
from powerbus.adapters.modbus.registers import PULSE8, ReadBlock

if TYPE_CHECKING:
    from powerbus.adapters.modbus.driver import ModbusDriver

__all__ = ["ModbusPoll", "Result"]

Result = MeterReading | MeterError


class ModbusPoll(LinePoll):
    """Reads of the ``meters`` whose ``results`` are still None, in order, on
    ``driver``'s line (held and connected by the caller); ``done`` is called when the
    poll ends. The channels of one pulse terminal share one read, made when the first of
    them comes up, and its failure is every channel's."""

    __slots__ = (
        "_blocks",
        "_done",
        "_driver",
        "_index",
        "_meters",
        "_number",
        "_read",
        "_readings",
        "_results",
        "_scope",
        "_terminals",
    )

    def __init__(
        self,
        driver: ModbusDriver,
        meters: Sequence[MeterSpec],
        results: list[Result | None],
        scope: ReadScope,
        done: Callable[[None], None],
    ) -> None:
        super().__init__(driver.line.line)
        self._driver = driver
        self._meters = meters
        self._results = results
        self._scope = scope
        self._done = done
        self._terminals: dict[int, list[int]] = {}
        for index, meter in enumerate(meters):
            if meter.model is Model.PULSE8:
                self._terminals.setdefault(meter.unit, []).append(index)
        self._index = 0
        self._read = 0  # meters (or terminals) this poll has finished
        self._blocks: tuple[ReadBlock, ...] = ()
        self._number = 0
        self._readings: list[Reading] = []

    def _next(self) -> None:
        self._exchange = None
        if self._ended:
            return
        meters, results, line = self._meters, self._results, self._driver.line
        index = self._index
        while index < len(meters) and results[index] is not None:
            index += 1
        self._index = index
        if self._ends(finished=index == len(meters), progressed=bool(self._read)):
            self._done(None)
            return
        meter = meters[index]
        if meter.model is Model.PULSE8:
            block = TERMINAL_BLOCK
            self._exchange = line.begin(
                meter.meter_id, meter.unit, PULSE8.table, block.address, block.count, self._terminal
            )
        else:
            self._blocks = self._driver.plan_of(meter, self._scope)
            self._readings = []
            self._send_block(0)

    def _send_block(self, number: int) -> None:
        meter, block = self._meters[self._index], self._blocks[number]
        self._number = number
        self._exchange = self._driver.line.begin(
            meter.meter_id,
            meter.unit,
            register_map(meter).table,
            block.address,
            block.count,
            self._block_read,
        )

    def _block_read(self, outcome: Outcome) -> None:
        if isinstance(outcome, MeterError):
            self._meter_done(outcome)
            return
        self._readings += decode_block(self._blocks[self._number], outcome)
        if self._number + 1 < len(self._blocks):
            self._send_block(self._number + 1)
            return
        meter_id = self._meters[self._index].meter_id
        reading = MeterReading(meter_id, datetime.now(timezone.utc), tuple(self._readings))
        self._meter_done(reading)

    def _terminal(self, outcome: Outcome) -> None:
        meters, results, index = self._meters, self._results, self._index
        counters_status = None if isinstance(outcome, MeterError) else terminal(outcome)
        for i in self._terminals[meters[index].unit]:
            if results[i] is not None:
                continue
            if counters_status is not None:
                results[i] = channel_reading(meters[i], *counters_status)
            elif isinstance(outcome, MeterError):
                results[i] = outcome if i == index else outcome.for_meter(meters[i].meter_id)
        self._read += 1
        self._next()

    def _meter_done(self, result: Result) -> None:
        self._results[self._index] = result
        self._read += 1
        self._next()
