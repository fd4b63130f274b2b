"""What one read of a meter becomes: ``Reading`` messages (CIM reading types, values
with the meter's multiplier) and the register records the store keeps.

Reading-type codes are the 18-part CIM ReadingType: the energy registers are bulk
(accumulation 1), forward (flow 1) or reverse (19), active energy (kind 12) in kWh
(multiplier 3, unit 72), with the TOU rate in part 12; instantaneous values have
accumulation 12, the phase in part 15 (0 total, 128 phase A).

>>> energy_type(forward=True, tou=0) == FORWARD_BULK_KWH
True
>>> energy_type(forward=True, tou=2)
'0.0.0.1.1.1.12.0.0.0.0.2.0.0.0.3.72.0'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from powerbus.adapters.meters import MeterReading, Quantity, Reading
from powerbus.metering.v1 import metering_pb2 as pb
from powerbus.nodes.metering.convert import kwh_to_wh, time_to_proto
from powerbus.nodes.metering.store import FORWARD_BULK_KWH, RegisterRecord

__all__ = [
    "PULSE_COUNT",
    "ReadKind",
    "energy_type",
    "reading_type",
    "readings_to_proto",
    "register_records",
    "vee_register",
    "vee_register_type",
]

PULSE_COUNT = "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.0.111.0"
"""A pulse channel's raw counter (unit 111: count), what VEE works its intervals from."""


@dataclass(frozen=True, slots=True)
class ReadKind:
    """CIM parts of one :class:`Quantity`: accumulation, measurement kind, multiplier,
    unit code, and the proto's unit."""

    accumulation: int
    kind: int
    multiplier: int
    unit_code: int
    unit: pb.Unit.ValueType
    words: str


_KINDS: dict[Quantity, ReadKind] = {
    Quantity.VOLTAGE: ReadKind(12, 54, 0, 29, pb.UNIT_VOLT, "电压 V"),
    Quantity.CURRENT: ReadKind(12, 4, 0, 5, pb.UNIT_AMPERE, "电流 A"),
    Quantity.POWER: ReadKind(12, 37, 3, 38, pb.UNIT_KW, "有功功率 kW"),
    Quantity.POWER_FACTOR: ReadKind(12, 38, 0, 65, pb.UNIT_POWER_FACTOR, "功率因数"),
    Quantity.FREQUENCY: ReadKind(12, 15, 0, 33, pb.UNIT_HERTZ, "频率 Hz"),
}
_PHASES = {0: 0, 1: 128, 2: 64, 3: 32}


def energy_type(*, forward: bool, tou: int) -> str:
    """The bulk active-energy register of one direction and TOU rate (0: total)."""
    flow = 1 if forward else 19
    return f"0.0.0.1.{flow}.1.12.0.0.0.0.{tou}.0.0.0.3.72.0"


def reading_type(reading: Reading) -> pb.ReadingType:
    """The ``ReadingType`` of one value as read."""
    if reading.quantity in (Quantity.ENERGY_FORWARD, Quantity.ENERGY_REVERSE):
        forward = reading.quantity is Quantity.ENERGY_FORWARD
        rate = f" 费率{reading.tou}" if reading.tou else "总"
        return pb.ReadingType(
            mrid=energy_type(forward=forward, tou=reading.tou),
            obis=f"1.0.{1 if forward else 2}.8.{reading.tou}.255",
            description=f"{'正向' if forward else '反向'}有功{rate}电能 kWh",
            unit=pb.UNIT_KWH,
            accumulation=pb.ACCUMULATION_BULK,
            flow_direction=pb.FLOW_DIRECTION_FORWARD if forward else pb.FLOW_DIRECTION_REVERSE,
            tou=reading.tou,
        )
    if reading.quantity is Quantity.PULSES:
        return pb.ReadingType(
            mrid=PULSE_COUNT,
            description="脉冲计数",
            unit=pb.UNIT_PULSE,
            accumulation=pb.ACCUMULATION_BULK,
            flow_direction=pb.FLOW_DIRECTION_FORWARD,
        )
    kind = _KINDS[reading.quantity]
    phase = _PHASES.get(reading.phase, 0)
    return pb.ReadingType(
        mrid=f"0.0.0.{kind.accumulation}.0.1.{kind.kind}.0.0.0.0.0.0.0.{phase}.{kind.multiplier}"
        f".{kind.unit_code}.0",
        description=kind.words + (f" L{reading.phase}" if reading.phase else ""),
        unit=kind.unit,
        accumulation=pb.ACCUMULATION_INSTANTANEOUS,
    )


def _scaled(meter: pb.Meter, reading: Reading) -> float:
    factor = meter.multiplier or 1.0
    if reading.quantity in (Quantity.VOLTAGE, Quantity.POWER_FACTOR, Quantity.FREQUENCY):
        return reading.value  # a CT/VT ratio scales energy, current and power only
    if reading.quantity is Quantity.PULSES:
        return reading.value
    return reading.value * factor


def readings_to_proto(
    meter: pb.Meter, read: MeterReading, *, wanted: Iterable[str] = (), source: str
) -> list[pb.Reading]:
    """The values of ``read`` as ``Reading`` s, the forward total register first; only
    the ``wanted`` mRIDs when some are given."""
    only = set(wanted)
    first = sorted(
        read.readings,
        key=lambda r: (r.quantity is not Quantity.ENERGY_FORWARD, r.quantity.value, r.tou),
    )
    out = []
    for reading in first:
        kind = reading_type(reading)
        if only and kind.mrid not in only:
            continue
        out.append(
            pb.Reading(
                reading_type=kind,
                value=_scaled(meter, reading),
                time_stamp=time_to_proto(read.read_at),
                reported_date_time=time_to_proto(read.read_at),
                source=source,
                quality=pb.ReadingQuality(code=pb.QUALITY_CODE_VALID, cim_type="1.0.0"),
            )
        )
    return out


def register_records(meter: pb.Meter, read: MeterReading, *, at: datetime) -> list[RegisterRecord]:
    """The energy registers (Wh, with the multiplier) and a pulse channel's raw count of
    ``read`` as store records at ``at``."""
    records = []
    for reading in read.readings:
        if reading.quantity in (Quantity.ENERGY_FORWARD, Quantity.ENERGY_REVERSE):
            forward = reading.quantity is Quantity.ENERGY_FORWARD
            wh = kwh_to_wh(_scaled(meter, reading), field="reading.value")
            records.append(
                RegisterRecord(
                    meter.meter_id, energy_type(forward=forward, tou=reading.tou), at, wh
                )
            )
        elif reading.quantity is Quantity.PULSES:
            records.append(RegisterRecord(meter.meter_id, PULSE_COUNT, at, int(reading.value)))
    return records


def vee_register(meter: pb.Meter, read: MeterReading) -> int | None:
    """The register VEE derives intervals from: pulses on a pulse channel, else the
    forward total in Wh; None when the read lacks it."""
    if meter.kind == pb.METER_KIND_PULSE_CHANNEL:
        pulses = read.value(Quantity.PULSES)
        return None if pulses is None else int(pulses)
    kwh = read.value(Quantity.ENERGY_FORWARD)
    if kwh is None:
        return None
    return kwh_to_wh(kwh * (meter.multiplier or 1.0), field="reading.value")


def vee_register_type(meter: pb.Meter) -> str:
    """The mRID of :func:`vee_register`'s values in the store."""
    return PULSE_COUNT if meter.kind == pb.METER_KIND_PULSE_CHANNEL else FORWARD_BULK_KWH
