"""Proto ↔ domain for the metering node, in one place: enums by name, kWh doubles ↔
integer Wh (the only place a float meets an energy value), timestamps, and the records
the VEE engine and the store use ↔ ``powerbus.metering.v1`` messages.

>>> kwh_to_wh(1206.42), wh_to_kwh(1_206_420)
(1206420, 1206.42)
>>> from powerbus.nodes.metering.vee import QualityCode
>>> quality_from_proto(quality_to_proto(QualityCode.SUSPECT))
<QualityCode.SUSPECT: 'suspect'>
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from math import floor, isfinite

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from powerbus.common.v1 import common_pb2
from powerbus.metering.v1 import metering_pb2 as pb
from powerbus.nodes.metering.errors import InvalidReading
from powerbus.nodes.metering.store import (
    IntervalRecord,
    LocalWindow,
    StoredInterval,
    UsageSummary,
)
from powerbus.nodes.metering.vee import (
    EstimationMethod,
    IntervalRead,
    IntervalValue,
    MeterSpec,
    QualityCode,
    VeeAction,
    VeeFinding,
    VeeOutcome,
    VeeRule,
)

__all__ = [
    "action_to_proto",
    "finding_to_proto",
    "interval_reads_from_proto",
    "interval_to_proto",
    "kwh_to_wh",
    "meter_readings_to_proto",
    "meter_spec_from_proto",
    "method_from_proto",
    "method_to_proto",
    "outcome_to_proto",
    "quality_from_proto",
    "quality_to_proto",
    "records_from_outcome",
    "rule_from_proto",
    "rule_to_proto",
    "summary_to_proto",
    "time_from_proto",
    "time_to_proto",
    "wh_to_kwh",
    "window_from_proto",
]

_MILLI = Decimal(1000)
_FAST_LIMIT = 1e9
_TIE = 1e-6


# -- numbers and times ------------------------------------------------------------------


def kwh_to_wh(kwh: float, *, field: str = "value") -> int:
    """A wire kWh double as integer Wh, rounded half up from its shortest decimal form
    (``repr``), so 0.1 kWh is 100 Wh, not 100.00000000000001."""
    if not isfinite(kwh):
        raise InvalidReading(field, f"not a finite number: {kwh!r}")
    # Every register of every read comes through here (six or more a reading), and the
    # Decimal route costs several µs. Below 10^9 Wh the float product is within 10^-6 of
    # the exact one, so unless it is that close to a half the nearest integer is the
    # same either way; a near-tie (a value with a half Wh) takes the exact route.
    wh = kwh * 1000.0
    if -_FAST_LIMIT < wh < _FAST_LIMIT:
        below = floor(wh)
        if abs(wh - below - 0.5) > _TIE:
            return int(below) + (wh - below > 0.5)
    return int((Decimal(repr(kwh)) * _MILLI).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def wh_to_kwh(wh: int) -> float:
    """Integer Wh as the wire's kWh double (exact to the Wh below 2^53 Wh)."""
    return float(Decimal(wh) / _MILLI)


def time_to_proto(t: datetime) -> Timestamp:
    """An aware datetime as a protobuf Timestamp (UTC)."""
    stamp = Timestamp()
    stamp.FromDatetime(t.astimezone(timezone.utc))
    return stamp


def time_from_proto(stamp: Timestamp) -> datetime:
    """A protobuf Timestamp as an aware UTC datetime."""
    return stamp.ToDatetime(tzinfo=timezone.utc)


def _duration(d: Duration) -> timedelta:
    return d.ToTimedelta()


# -- enums: by name, the proto's prefix + the member's name -----------------------------


def quality_to_proto(q: QualityCode) -> pb.QualityCode.ValueType:
    """``QualityCode.X`` → ``QUALITY_CODE_X``."""
    return pb.QualityCode.Value(f"QUALITY_CODE_{q.name}")


def quality_from_proto(n: pb.QualityCode.ValueType, *, field: str = "quality.code") -> QualityCode:
    """``QUALITY_CODE_X`` → ``QualityCode.X``; UNSPECIFIED is an :class:`InvalidReading`."""
    name = pb.QualityCode.Name(n).removeprefix("QUALITY_CODE_")
    if name == "UNSPECIFIED":
        raise InvalidReading(field, "quality code is unspecified")
    return QualityCode[name]


def rule_to_proto(r: VeeRule) -> pb.VeeRule.ValueType:
    """``VeeRule.X`` → ``VEE_RULE_X``."""
    return pb.VeeRule.Value(f"VEE_RULE_{r.name}")


def rule_from_proto(n: pb.VeeRule.ValueType) -> VeeRule:
    """``VEE_RULE_X`` → ``VeeRule.X`` (UNSPECIFIED included: a VALID value has no rule)."""
    return VeeRule[pb.VeeRule.Name(n).removeprefix("VEE_RULE_")]


def method_to_proto(m: EstimationMethod) -> pb.EstimationMethod.ValueType:
    """``EstimationMethod.X`` → ``ESTIMATION_METHOD_X``."""
    return pb.EstimationMethod.Value(f"ESTIMATION_METHOD_{m.name}")


def method_from_proto(n: pb.EstimationMethod.ValueType) -> EstimationMethod:
    """``ESTIMATION_METHOD_X`` → ``EstimationMethod.X``."""
    return EstimationMethod[pb.EstimationMethod.Name(n).removeprefix("ESTIMATION_METHOD_")]


def action_to_proto(a: VeeAction) -> pb.VeeAction.ValueType:
    """``VeeAction.X`` → ``VEE_ACTION_X``."""
    return pb.VeeAction.Value(f"VEE_ACTION_{a.name}")


# -- meters, reads, values --------------------------------------------------------------


def meter_spec_from_proto(meter: pb.Meter) -> MeterSpec:
    """What VEE needs of a configured meter. A pulse channel wraps at its 32-bit counter,
    whatever ``rollover_kwh`` says."""
    interval = _duration(meter.interval) if meter.HasField("interval") else timedelta(0)
    return MeterSpec(
        meter_id=meter.meter_id,
        interval=interval or timedelta(minutes=15),
        max_demand_w=kwh_to_wh(meter.max_demand_kw, field="meter.max_demand_kw"),
        rollover_wh=kwh_to_wh(meter.rollover_kwh, field="meter.rollover_kwh"),
        pulses_per_kwh=meter.pulses_per_kwh,
        net_metered=meter.net_metered,
    )


def interval_reads_from_proto(block: pb.IntervalBlock, *, field: str) -> list[IntervalRead]:
    """The block's values as VEE input (the raw values as read: quality is VEE's to set)."""
    length = (
        _duration(block.reading_type.interval) if block.reading_type.HasField("interval") else None
    )
    return [
        IntervalRead(
            time_from_proto(r.time_stamp),
            kwh_to_wh(r.value, field=f"{field}.interval_readings[{i}].value"),
            length or None,
        )
        for i, r in enumerate(block.interval_readings)
    ]


def interval_to_proto(value: IntervalValue) -> pb.IntervalReading:
    """A checked value as an ``IntervalReading``; a value-less one (a reset, an unfilled
    gap) goes out as 0 with its quality saying why."""
    quality = pb.ReadingQuality(
        code=quality_to_proto(value.quality),
        rule=rule_to_proto(value.rule),
        method=method_to_proto(value.method),
        cim_type="1.0.0" if value.quality is QualityCode.VALID else "",
        detail=value.detail,
    )
    if value.raw_wh is not None:
        quality.raw_value = wh_to_kwh(value.raw_wh)
    return pb.IntervalReading(
        time_stamp=time_to_proto(value.end),
        value=wh_to_kwh(value.wh) if value.wh is not None else 0.0,
        quality=quality,
    )


def meter_readings_to_proto(items: Iterable[StoredInterval]) -> list[pb.MeterReading]:
    """Stored intervals (ordered by meter, type, time) as one ``MeterReading`` per meter
    with one ``IntervalBlock`` per reading type."""
    out: list[pb.MeterReading] = []
    blocks: dict[str, pb.IntervalBlock] = {}
    for item in items:
        if not out or out[-1].meter.meter_id != item.meter_id:
            out.append(pb.MeterReading(meter=common_pb2.MeterRef(meter_id=item.meter_id)))
            blocks = {}
        block = blocks.get(item.reading_type)
        if block is None:
            block = out[-1].interval_blocks.add()
            block.reading_type.mrid = item.reading_type
            blocks[item.reading_type] = block
        block.interval_readings.append(interval_to_proto(item.value))
    return out


def records_from_outcome(outcome: VeeOutcome, reading_type: str) -> list[IntervalRecord]:
    """The outcome's values as store records of one reading type."""
    return [IntervalRecord(outcome.meter_id, reading_type, v) for v in outcome.intervals]


# -- VEE results and summaries ----------------------------------------------------------


def finding_to_proto(finding: VeeFinding, reading_type: str) -> pb.VeeFinding:
    """A finding about values of ``reading_type`` (an mRID) as a ``VeeFinding``."""
    msg = pb.VeeFinding(
        rule=rule_to_proto(finding.rule),
        action=action_to_proto(finding.action),
        reading_type=reading_type,
        time_stamp=time_to_proto(finding.time_stamp),
        count=finding.count,
        method=method_to_proto(finding.method),
        detail=finding.detail,
    )
    if finding.raw_wh is not None:
        msg.raw_value = wh_to_kwh(finding.raw_wh)
    if finding.final_wh is not None:
        msg.final_value = wh_to_kwh(finding.final_wh)
    return msg


def outcome_to_proto(outcome: VeeOutcome, reading_type: str) -> pb.VeeResult:
    """One meter's VEE outcome as a ``VeeResult`` (counts and findings)."""
    return pb.VeeResult(
        meter=common_pb2.MeterRef(meter_id=outcome.meter_id),
        accepted=outcome.accepted,
        estimated=outcome.estimated,
        rejected=outcome.rejected,
        intervals_expected=outcome.intervals_expected,
        intervals_received=outcome.intervals_received,
        findings=[finding_to_proto(f, reading_type) for f in outcome.findings],
    )


def window_from_proto(window: pb.LocalTimeWindow) -> LocalWindow:
    """A ``LocalTimeWindow`` of ``SummarizeUsageRequest`` as a :class:`LocalWindow`."""
    return LocalWindow(
        window.label, window.start_minute, window.end_minute, frozenset(window.months)
    )


def summary_to_proto(summary: UsageSummary) -> pb.UsageSummary:
    """Determinants in Wh, varh and W as the wire's kWh, kvarh and kW doubles."""
    msg = pb.UsageSummary(
        meter=common_pb2.MeterRef(meter_id=summary.meter_id),
        period=common_pb2.Period(
            start=time_to_proto(summary.start), end=time_to_proto(summary.end)
        ),
        kwh=wh_to_kwh(summary.wh),
        export_kwh=wh_to_kwh(summary.export_wh),
        reactive_kvarh=wh_to_kwh(summary.reactive_varh),
        max_demand_kw=wh_to_kwh(summary.max_demand_w),
        window_usage=[pb.WindowUsage(label=k, kwh=wh_to_kwh(v)) for k, v in summary.window_wh],
        values_total=summary.values_total,
        values_estimated=summary.values_estimated,
        complete=summary.complete,
    )
    if summary.max_demand_at is not None:
        msg.max_demand_at.CopyFrom(time_to_proto(summary.max_demand_at))
    return msg
