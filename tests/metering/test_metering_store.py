"""The readings store on SQLite and PostgreSQL: round trips, idempotent re-store,
backfill superseding estimates with history kept, pages, registers and summaries."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from metering_helpers import DAY, T0, Q, end, meter, reads, registers, varied

from powerbus.bus.kernel.errors import InvalidArgument, NotFound
from powerbus.nodes.metering.store import (
    FORWARD_BULK_KWH,
    FORWARD_DELTA_KWH,
    REVERSE_DELTA_KWH,
    IntervalRecord,
    LocalWindow,
    ReadingStore,
    RegisterRecord,
)
from powerbus.nodes.metering.vee import (
    EstimationMethod,
    IntervalValue,
    QualityCode,
    VeeRule,
    run_vee,
)


def records(values, meter_id="M1", reading_type=FORWARD_DELTA_KWH):
    return [IntervalRecord(meter_id, reading_type, v) for v in values]


def stored_values(store: ReadingStore, meter_id="M1", start=T0, stop=T0 + 2 * DAY):
    return [s.value for s in store.readings([meter_id], start, stop)]


def test_a_vee_outcome_round_trips_exactly(store):
    m = meter(rollover_wh=1_000_000, max_demand_w=40_000)
    regs = registers([999_000, 999_500, 200, None, 1200, 1100, 1300])
    out = run_vee(m, T0, end(8), registers=regs)
    assert {v.quality for v in out.intervals} >= {
        QualityCode.SUBSTITUTED,
        QualityCode.ESTIMATED,
        QualityCode.SUSPECT,
    }
    result = store.write_intervals(records(out.intervals))
    assert (result.inserted, result.unchanged) == (8, 0)
    assert stored_values(store) == list(out.intervals)


def test_restoring_the_same_batch_is_a_no_op(store):
    batch = records(run_vee(meter(), T0, T0 + DAY, intervals=reads(varied(96, 50))).intervals)
    first = store.write_intervals(batch)
    again = store.write_intervals(batch)
    assert (first.inserted, again.inserted, again.unchanged) == (96, 0, 96)
    assert [s.write_id for s in store.readings(["M1"], T0, T0 + 2 * DAY)] == [first.write_id] * 96
    within = store.write_intervals(batch + batch[:3])
    assert within.unchanged == 99


def test_backfill_supersedes_estimates_and_keeps_history(store):
    gappy = run_vee(meter(), T0, end(6), intervals=reads([10, None, None, None, None, 60]))
    store.write_intervals(records(gappy.intervals))
    assert stored_values(store)[2].quality is QualityCode.ESTIMATED
    measured = run_vee(meter(), T0, end(6), intervals=reads([10, 21, 29, 41, 52, 60]))
    backfill = store.write_intervals(records(measured.intervals))
    assert (backfill.superseded, backfill.unchanged) == (4, 2)
    assert stored_values(store) == list(measured.intervals)
    old = store.superseded("M1", FORWARD_DELTA_KWH, T0, T0 + DAY)
    assert [h.stored.value for h in old] == list(gappy.intervals[1:5])
    assert {h.superseded_by for h in old} == {backfill.write_id}
    assert store.write_intervals(records(measured.intervals)).unchanged == 6


def test_an_estimate_never_replaces_a_measurement_and_conflicts_are_kept(store):
    store.write_intervals(records([IntervalValue(end(1), 100)]))
    estimate = IntervalValue(
        end(1), 90, QualityCode.ESTIMATED, VeeRule.GAP, EstimationMethod.FLAT_LOAD
    )
    assert store.write_intervals(records([estimate])).kept == 1
    assert store.write_intervals(records([IntervalValue(end(1), 101)])).conflicts == 1
    assert stored_values(store) == [IntervalValue(end(1), 100)]
    assert store.superseded("M1", FORWARD_DELTA_KWH, T0, T0 + DAY) == []


def test_a_reset_value_without_a_number_is_stored_and_later_filled(store):
    flagged = IntervalValue(
        end(1),
        None,
        QualityCode.SUSPECT,
        VeeRule.METER_RESET,
        raw_wh=-5000,
        detail="register went down",
    )
    store.write_intervals(records([flagged]))
    assert stored_values(store) == [flagged]
    manual = IntervalValue(
        end(1), 120, QualityCode.ESTIMATED, VeeRule.METER_RESET, EstimationMethod.MANUAL, -5000
    )
    assert store.write_intervals(records([manual])).superseded == 1


def test_pages_filters_and_tokens(store):
    for meter_id in ("A", "B"):
        store.write_intervals(
            records(
                run_vee(meter(), T0, end(5), intervals=reads([1, 2, None, 4, 5])).intervals,
                meter_id=meter_id,
            )
        )
    store.write_intervals(
        records([IntervalValue(end(1), 7)], meter_id="A", reading_type=REVERSE_DELTA_KWH)
    )
    seen, token = [], ""
    while True:
        page = store.readings_page(["A", "B"], T0, T0 + DAY, page_size=3, page_token=token)
        seen.extend((s.meter_id, s.reading_type, s.value.end) for s in page.items)
        if not (token := page.next_page_token):
            break
    assert len(set(seen)) == len(seen) == 11  # every value once, across 4 pages
    assert [k[0] for k in seen] == ["A"] * 6 + ["B"] * 5
    only = store.readings(["A"], T0, T0 + DAY, reading_types=[REVERSE_DELTA_KWH])
    assert [s.value.wh for s in only] == [7]
    est = store.readings(["A", "B"], T0, T0 + DAY, qualities=[QualityCode.ESTIMATED])
    assert [(s.meter_id, s.value.wh) for s in est] == [("A", 3), ("B", 3)]
    with pytest.raises(InvalidArgument, match="page_token"):
        store.readings_page(["A"], T0, T0 + DAY, page_token="nonsense")
    with pytest.raises(InvalidArgument, match="period"):
        store.readings(["A"], T0, T0)
    with pytest.raises(InvalidArgument, match="meters"):
        store.readings([], T0, end(1))


def test_registers_round_trip_idempotently(store):
    reads_ = [RegisterRecord("M1", FORWARD_BULK_KWH, T0 + k * Q, 1000 + k) for k in range(4)]
    assert store.write_registers(reads_).inserted == 4
    again = store.write_registers(reads_)
    assert (again.inserted, again.unchanged, again.conflicts) == (0, 4, 0)
    changed = [RegisterRecord("M1", FORWARD_BULK_KWH, T0, 999)]
    assert store.write_registers(changed).conflicts == 1
    assert [r.record for r in store.registers(["M1"], T0, end(3))] == reads_


TOU = [
    LocalWindow("valley", 1380, 420),  # 23:00-07:00
    LocalWindow("peak", 420, 1380),
]


def test_summary_totals_windows_demand_and_completeness(store):
    values = [100] * 28 + [400] * 64 + [100] * 4  # 00:00-07:00, 07:00-23:00, 23:00-24:00
    values[50] = 900
    out = run_vee(meter(), T0, T0 + DAY, intervals=reads(values))
    store.write_intervals(records(out.intervals))
    store.write_intervals(
        records([IntervalValue(end(k), 5) for k in range(1, 97)], reading_type=REVERSE_DELTA_KWH)
    )
    s = store.summarize("M1", T0, T0 + DAY, windows=TOU)
    assert s.wh == sum(values) == 3200 + 63 * 400 + 900
    assert dict(s.window_wh) == {"valley": 3200, "peak": 63 * 400 + 900}
    assert (s.max_demand_w, s.max_demand_at) == (3600, end(51))
    assert (s.export_wh, s.values_total, s.complete) == (480, 192, True)
    half = store.summarize("M1", T0, T0 + 2 * DAY)
    assert not half.complete and half.wh == s.wh


def test_summary_prefers_the_register_delta_with_rollover(store):
    store.write_intervals(records([IntervalValue(end(k), 10) for k in range(1, 5)]))
    store.write_registers(
        [
            RegisterRecord("M1", FORWARD_BULK_KWH, T0, 999_990),
            RegisterRecord("M1", FORWARD_BULK_KWH, end(4), 30),
        ]
    )
    s = store.summarize("M1", T0, end(4), rollover_wh=1_000_000)
    assert (s.wh, s.complete) == (40, True)


def test_summary_checks_its_windows_and_the_meter(store):
    store.write_intervals(records([IntervalValue(end(1), 10)]))
    with pytest.raises(InvalidArgument, match="overlaps"):
        store.summarize("M1", T0, end(1), windows=[*TOU, LocalWindow("x", 0, 60)])
    with pytest.raises(InvalidArgument, match="in no window"):
        store.summarize("M1", T0, end(1), windows=TOU[:1])
    with pytest.raises(InvalidArgument, match="time_zone"):
        store.summarize("M1", T0, end(1), windows=TOU, time_zone="Mars/Olympus")
    with pytest.raises(NotFound, match="NOPE"):
        store.summarize("NOPE", T0, end(1))
    summer = [
        LocalWindow("sharp", 1200, 1320, frozenset({7, 8})),
        LocalWindow("rest", 1320, 1200, frozenset({7, 8})),
        LocalWindow("rest", 0, 0, frozenset(range(1, 7)) | frozenset(range(9, 13))),
    ]
    assert dict(store.summarize("M1", T0, end(1), windows=summer).window_wh) == {
        "sharp": 0,
        "rest": 10,
    }


def test_months_go_to_their_own_partitions_on_postgresql(store):
    if store.engine.dialect.name != "postgresql":
        pytest.skip("partitions are a PostgreSQL feature")
    start = T0 + timedelta(hours=6)  # 2026-11-30 22:00 UTC, two hours before December
    values = [IntervalValue(start + k * Q, 10) for k in range(1, 17)]
    store.write_intervals(records(values))
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT tableoid::regclass::text, count(*) FROM metering_intervals GROUP BY 1")
        ).all()
    # Partitioned by end_at: the interval ending at midnight UTC is December's row.
    assert sorted(rows) == [("metering_intervals_p202611", 7), ("metering_intervals_p202612", 9)]
    assert len(store.readings(["M1"], start, start + DAY)) == 16


def test_history_for_vee_comes_from_valid_values_only(store):
    past = T0 - 8 * DAY
    values = [IntervalValue(past + k * Q, 100) for k in range(1, 8 * 96 + 1)]
    values[5] = IntervalValue(
        values[5].end, 9999, QualityCode.ESTIMATED, VeeRule.GAP, EstimationMethod.FLAT_LOAD
    )
    store.write_intervals(records(values))
    h = store.history("M1", T0, days=8)
    # The day with an estimate in it is left out: 7 whole days, enough for HIGH_LOW.
    assert (h.days, h.adu_wh, h.expected(end(1))) == (7, 9600, 100)
    out = run_vee(meter(), T0, T0 + DAY, intervals=reads(varied(96, 400)), history=h)
    assert {v.rule for v in out.intervals} == {VeeRule.HIGH_LOW}
