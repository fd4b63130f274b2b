"""Proto ↔ domain: enum names and stored numbers agree with the generated code, kWh
doubles become exact Wh, and values survive the trip to messages."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from google.protobuf.duration_pb2 import Duration
from hypothesis import given
from hypothesis import strategies as st
from metering_helpers import T0, end, meter, reads

from powerbus.metering.v1 import metering_pb2 as pb
from powerbus.nodes.metering import convert
from powerbus.nodes.metering.errors import InvalidReading
from powerbus.nodes.metering.store import FORWARD_DELTA_KWH, LocalWindow, StoredInterval
from powerbus.nodes.metering.store._codes import METHOD, QUALITY, RULE
from powerbus.nodes.metering.vee import (
    EstimationMethod,
    QualityCode,
    VeeAction,
    VeeRule,
    run_vee,
)


@pytest.mark.parametrize(
    ("domain", "proto", "prefix", "stored"),
    [
        (QualityCode, pb.QualityCode, "QUALITY_CODE_", QUALITY),
        (VeeRule, pb.VeeRule, "VEE_RULE_", RULE),
        (EstimationMethod, pb.EstimationMethod, "ESTIMATION_METHOD_", METHOD),
        (VeeAction, pb.VeeAction, "VEE_ACTION_", None),
    ],
)
def test_every_enum_member_is_a_proto_name_and_stored_as_its_number(domain, proto, prefix, stored):
    keys = proto.keys()
    names = {n.removeprefix(prefix) for n in keys} - {"UNSPECIFIED"}
    members = {m.name for m in domain} - {"UNSPECIFIED"}
    assert members == names
    for member in domain:
        assert member.value == member.name.lower()
        if stored is not None:
            assert stored[member] == proto.Value(prefix + member.name)


@pytest.mark.parametrize(
    ("kwh", "wh"),
    [(0.1, 100), (1206.42, 1_206_420), (0.0005, 1), (-0.0015, -2), (999999.99, 999_999_990)],
)
def test_kwh_doubles_become_exact_wh(kwh, wh):
    assert convert.kwh_to_wh(kwh) == wh
    assert convert.kwh_to_wh(convert.wh_to_kwh(wh)) == wh


def _exact_wh(kwh: float) -> int:
    return int((Decimal(repr(kwh)) * 1000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@given(
    st.one_of(
        st.floats(min_value=-1e12, max_value=1e12),  # Decimal(28 digits) takes no more
        st.floats(min_value=-2e6, max_value=2e6),
        # values with a half Wh, the ties the float route must not decide
        st.integers(-(10**10), 10**10).map(lambda n: (n + 0.5) / 1000),
        st.integers(-(10**10), 10**10).map(lambda n: n / 10_000),
    )
)
def test_the_quick_kwh_route_agrees_with_the_exact_decimal_one(kwh):
    assert convert.kwh_to_wh(kwh) == _exact_wh(kwh)


def test_non_finite_energy_is_refused_naming_the_field():
    with pytest.raises(InvalidReading, match=r"x\.value"):
        convert.kwh_to_wh(float("nan"), field="x.value")
    with pytest.raises(InvalidReading, match=r"quality\.code"):
        convert.quality_from_proto(pb.QUALITY_CODE_UNSPECIFIED)


def test_meter_spec_from_a_configured_meter():
    msg = pb.Meter(
        meter_id="P-1",
        kind=pb.METER_KIND_PULSE_CHANNEL,
        pulses_per_kwh=3200,
        rollover_kwh=2**32 / 3200,
        max_demand_kw=7.5,
        net_metered=True,
        interval=Duration(seconds=300),
    )
    spec = convert.meter_spec_from_proto(msg)
    assert (spec.interval, spec.max_demand_w, spec.pulses_per_kwh, spec.net_metered) == (
        timedelta(minutes=5),
        7500,
        3200,
        True,
    )
    assert convert.meter_spec_from_proto(pb.Meter(meter_id="M")).interval == timedelta(minutes=15)


def test_values_go_out_as_interval_blocks_and_come_back():
    out = run_vee(meter(max_demand_w=4000), T0, end(4), intervals=reads([100, None, 2000, 130]))
    stored = [StoredInterval("M1", FORWARD_DELTA_KWH, v, 1) for v in out.intervals]
    (msg,) = convert.meter_readings_to_proto(stored)
    (block,) = msg.interval_blocks
    assert msg.meter.meter_id == "M1" and block.reading_type.mrid == FORWARD_DELTA_KWH
    plausibility = block.interval_readings[2]
    assert plausibility.quality.code == pb.QUALITY_CODE_ESTIMATED
    assert plausibility.quality.rule == pb.VEE_RULE_PLAUSIBILITY
    assert plausibility.quality.raw_value == 2.0 and plausibility.value == 0.12
    gap = block.interval_readings[1]
    assert not gap.quality.HasField("raw_value")
    assert gap.quality.method == pb.ESTIMATION_METHOD_LINEAR_INTERPOLATION
    assert block.interval_readings[0].quality.cim_type == "1.0.0"
    back = convert.interval_reads_from_proto(block, field="interval_blocks[0]")
    assert [r.wh for r in back] == [v.wh for v in out.intervals]
    assert convert.time_from_proto(block.interval_readings[0].time_stamp) == end(1)
    result = convert.outcome_to_proto(out, FORWARD_DELTA_KWH)
    assert (result.accepted, result.estimated, result.rejected) == (2, 2, 1)
    assert {f.rule for f in result.findings} == {pb.VEE_RULE_PLAUSIBILITY, pb.VEE_RULE_GAP}


def test_windows_from_proto():
    w = pb.LocalTimeWindow(label="peak", start_minute=480, end_minute=1260, months=[7, 8])
    assert convert.window_from_proto(w) == LocalWindow("peak", 480, 1260, frozenset({7, 8}))
