"""Reading a Modbus meter or pulse channel into a :class:`MeterReading` (domain side).

>>> driver = ModbusDriver(HostPort("127.0.0.1", 5020))
>>> # reading = await driver.read(spec, scope=ReadScope.ENERGY)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from powerbus.adapters.meters.driver import ReadScope
from powerbus.adapters.meters.errors import MeterError
from powerbus.adapters.meters.line import LineConfig
from powerbus.adapters.meters.records import MeterReading, MeterSpec, Model, Quantity, Reading
from powerbus.adapters.modbus.client import ModbusLine
from powerbus.adapters.modbus.codec import decode_float32, decode_uint32, pulses_to_kwh
from powerbus.adapters.modbus.registers import (
    MODELS,
    PULSE8,
    PULSE_STATUS,
    ReadBlock,
    RegisterMap,
    ValueType,
    plan,
)
from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.errors import InvalidArgument

__all__ = ["ModbusDriver", "decode_block"]

# A terminal read takes all counters and the status word in one request: one frame
# costs less line time than two, and it answers for all eight channels.
_PULSE_BLOCK = ReadBlock(0, PULSE_STATUS + 1, PULSE8.registers)


class ModbusDriver:
    """The :class:`~powerbus.adapters.meters.driver.MeterDriver` of one Modbus TCP line."""

    def __init__(self, gateway: HostPort, *, config: LineConfig | None = None) -> None:
        self.gateway = gateway
        self.line = ModbusLine(gateway, config=config)
        self._plans: dict[tuple[Model, ReadScope], tuple[ReadBlock, ...]] = {}

    async def read(self, meter: MeterSpec, *, scope: ReadScope = ReadScope.FULL) -> MeterReading:
        """Read one meter or pulse channel."""
        if meter.model is Model.PULSE8:
            return await self._read_pulse(meter)
        register_map = _map(meter)
        readings: list[Reading] = []
        for block in self._plan(register_map, scope):
            words = await self.line.read(
                meter=meter.meter_id,
                unit=meter.unit,
                table=register_map.table,
                address=block.address,
                count=block.count,
            )
            readings += decode_block(block, words)
        return MeterReading(meter.meter_id, datetime.now(timezone.utc), tuple(readings))

    async def read_terminal(self, meter: MeterSpec) -> tuple[tuple[int, ...], int]:
        """All eight counters and the wire-break mask of the terminal ``meter`` is on."""
        words = await self.line.read(
            meter=meter.meter_id,
            unit=meter.unit,
            table=PULSE8.table,
            address=_PULSE_BLOCK.address,
            count=_PULSE_BLOCK.count,
        )
        return decode_uint32(words[:PULSE_STATUS]), words[PULSE_STATUS]

    async def read_many(
        self, meters: Sequence[MeterSpec], *, scope: ReadScope = ReadScope.ENERGY
    ) -> list[MeterReading | MeterError]:
        """Read ``meters`` in order; the channels of one pulse terminal share one read
        (made when the first of them comes up), and its failure is every channel's."""
        results: list[MeterReading | MeterError | None] = [None] * len(meters)
        terminals: dict[int, list[int]] = {}
        for index, meter in enumerate(meters):
            if meter.model is Model.PULSE8:
                terminals.setdefault(meter.unit, []).append(index)
        for index, meter in enumerate(meters):
            if results[index] is not None:
                continue
            group = terminals.get(meter.unit, []) if meter.model is Model.PULSE8 else [index]
            try:
                if meter.model is Model.PULSE8:
                    counters, status = await self.read_terminal(meter)
                    for j in group:
                        results[j] = _channel(meters[j], counters, status)
                else:
                    results[index] = await self.read(meter, scope=scope)
            except MeterError as error:
                for j in group:
                    results[j] = error if j == index else error.for_meter(meters[j].meter_id)
        return [r for r in results if r is not None]

    async def close(self) -> None:
        """Close the line's connection (idempotent)."""
        await self.line.close()

    async def _read_pulse(self, meter: MeterSpec) -> MeterReading:
        counters, status = await self.read_terminal(meter)
        return _channel(meter, counters, status)

    def _plan(self, register_map: RegisterMap, scope: ReadScope) -> tuple[ReadBlock, ...]:
        key = (register_map.model, scope)
        if key not in self._plans:
            wanted = (
                register_map.energy_registers
                if scope is ReadScope.ENERGY
                else register_map.registers
            )
            self._plans[key] = plan(wanted)
        return self._plans[key]


def _channel(meter: MeterSpec, counters: tuple[int, ...], status: int) -> MeterReading:
    """The reading of one pulse channel from its terminal's counters and status word."""
    pulses = counters[meter.channel - 1]
    constant = meter.pulse_constant or 1
    readings = (
        Reading(Quantity.PULSES, float(pulses)),
        Reading(Quantity.ENERGY_FORWARD, pulses_to_kwh(pulses, constant)),
    )
    broken = bool(status >> (meter.channel - 1) & 1)
    alarms = frozenset({"wire_break"}) if broken else frozenset()
    return MeterReading(meter.meter_id, datetime.now(timezone.utc), readings, alarms=alarms)


def decode_block(block: ReadBlock, words: list[int]) -> list[Reading]:
    """The readings in one block's registers."""
    readings: list[Reading] = []
    for reg in block.registers:
        offset = reg.address - block.address
        if reg.type is ValueType.FLOAT32:
            value = decode_float32(words[offset : offset + 2])[0] * reg.scale
        elif reg.type is ValueType.UINT32:
            value = float(decode_uint32(words[offset : offset + 2])[0])
        else:
            value = float(words[offset])
        readings.append(Reading(reg.quantity, value, phase=reg.phase))
    return readings


def _map(meter: MeterSpec) -> RegisterMap:
    try:
        return MODELS[meter.model]
    except KeyError:
        raise InvalidArgument(
            "model", f"{meter.meter_id}: {meter.model.value} is not Modbus"
        ) from None
