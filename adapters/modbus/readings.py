"""From a Modbus meter's registers to its readings (the domain side of a read).

>>> from powerbus.adapters.modbus import SDM120, encode_float32, plan
>>> block = plan(SDM120.energy_registers)[0]
>>> [(r.quantity.value, r.value) for r in decode_block(block, encode_float32([12.5, 0.25]))]
[('energy_forward', 12.5), ('energy_reverse', 0.25)]
"""

from __future__ import annotations

from datetime import datetime, timezone

from powerbus.adapters.meters.records import MeterReading, MeterSpec, Quantity, Reading
from powerbus.adapters.modbus.codec import decode_float32, decode_uint32, pulses_to_kwh
from powerbus.adapters.modbus.registers import (
    MODELS,
    PULSE8,
    PULSE_STATUS,
    ReadBlock,
    RegisterMap,
    ValueType,
)
from powerbus.bus.kernel.errors import InvalidArgument

__all__ = ["TERMINAL_BLOCK", "channel_reading", "decode_block", "register_map", "terminal"]

# A terminal read takes all counters and the status word in one request: one frame
# costs less line time than two, and it answers for all eight channels.
TERMINAL_BLOCK = ReadBlock(0, PULSE_STATUS + 1, PULSE8.registers)


def register_map(meter: MeterSpec) -> RegisterMap:
    """The register map of ``meter``'s model; InvalidArgument if it is not Modbus."""
    try:
        return MODELS[meter.model]
    except KeyError:
        raise InvalidArgument(
            "model", f"{meter.meter_id}: {meter.model.value} is not Modbus"
        ) from None


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
        readings.append(Reading(reg.quantity, value, reg.phase))
    return readings


def terminal(words: list[int]) -> tuple[tuple[int, ...], int]:
    """A terminal's eight counters and its wire-break mask, from ``TERMINAL_BLOCK``."""
    return decode_uint32(words[:PULSE_STATUS]), words[PULSE_STATUS]


def channel_reading(meter: MeterSpec, counters: tuple[int, ...], status: int) -> MeterReading:
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
