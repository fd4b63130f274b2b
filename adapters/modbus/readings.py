"""From a Modbus meter's registers to its readings (the domain side of a read).

>>> from powerbus.adapters.modbus import SDM120, encode_float32, plan, registers_bytes
>>> block = plan(SDM120.energy_registers)[0]
>>> raw = registers_bytes(encode_float32([12.5, 0.25]))
>>> [(r.quantity.value, r.value) for r in decode_block(block, raw)]
[('energy_forward', 12.5), ('energy_reverse', 0.25)]
"""

from __future__ import annotations

import struct
from datetime import datetime

from powerbus.adapters.meters.records import MeterReading, MeterSpec, Quantity, Reading
from powerbus.adapters.modbus.codec import pulses_to_kwh
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


_LAYOUTS = {
    ValueType.FLOAT32: struct.Struct(">f"),
    ValueType.UINT32: struct.Struct(">I"),
    ValueType.UINT16: struct.Struct(">H"),
}
_COUNTERS = struct.Struct(f">{PULSE_STATUS // 2}IH")  # the counters, then the status word


_new = tuple.__new__  # a Reading without its Python __new__: a poll builds thousands


def decode_block(block: ReadBlock, raw: bytes) -> list[Reading]:
    """The readings in one block's registers (``raw``: their bytes, big-endian words)."""
    readings: list[Reading] = []
    for reg in block.registers:
        (value,) = _LAYOUTS[reg.type].unpack_from(raw, 2 * (reg.address - block.address))
        readings.append(_new(Reading, (reg.quantity, value * reg.scale, reg.phase, 0)))
    return readings


def terminal(raw: bytes) -> tuple[tuple[int, ...], int]:
    """A terminal's eight counters and its wire-break mask, from ``TERMINAL_BLOCK``'s
    registers' bytes."""
    *counters, status = _COUNTERS.unpack_from(raw)
    return tuple(counters), status


def channel_reading(
    meter: MeterSpec, counters: tuple[int, ...], status: int, read_at: datetime
) -> MeterReading:
    """The reading of one pulse channel from its terminal's counters and status word."""
    pulses = counters[meter.channel - 1]
    constant = meter.pulse_constant or 1
    readings = (
        _new(Reading, (Quantity.PULSES, float(pulses), 0, 0)),
        _new(Reading, (Quantity.ENERGY_FORWARD, pulses_to_kwh(pulses, constant), 0, 0)),
    )
    broken = bool(status >> (meter.channel - 1) & 1)
    alarms = frozenset({"wire_break"}) if broken else frozenset()
    return MeterReading(meter.meter_id, read_at, readings, alarms=alarms)
