"""Properties of the store's writes (hypothesis, on an in-memory SQLite database)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from metering_helpers import T0, end, meter, reads

from powerbus.bus.kernel.database import create_engine
from powerbus.nodes.metering.store import FORWARD_DELTA_KWH, IntervalRecord, ReadingStore
from powerbus.nodes.metering.vee import QualityCode, run_vee

series = st.lists(st.one_of(st.none(), st.integers(-50, 3_000)), min_size=1, max_size=30)
_meters = itertools.count()


@pytest.fixture(scope="module")
def store():
    engine = create_engine("sqlite://")
    s = ReadingStore(engine)
    s.migrate()
    yield s
    engine.dispose()


@settings(max_examples=60, deadline=None)
@given(series, st.integers(1, 5))
def test_restoring_in_any_batches_is_idempotent(store, values, parts):
    meter_id = f"P{next(_meters)}"  # each example its own meter in the shared database
    out = run_vee(
        meter(meter_id=meter_id, max_demand_w=8_000), T0, end(len(values)), intervals=reads(values)
    )
    batch = [IntervalRecord(meter_id, FORWARD_DELTA_KWH, v) for v in out.intervals]
    size = -(-len(batch) // parts)
    for i in range(0, len(batch), size):
        store.write_intervals(batch[i : i + size])
    first = store.readings([meter_id], T0, end(len(values) + 1))
    again = store.write_intervals(batch)
    assert (again.inserted, again.superseded, again.unchanged) == (0, 0, len(batch))
    assert store.readings([meter_id], T0, end(len(values) + 1)) == first
    assert [s.value for s in first] == list(out.intervals)


@settings(max_examples=60, deadline=None)
@given(series)
def test_backfill_replaces_exactly_the_estimates(store, values):
    meter_id = f"B{next(_meters)}"
    spec = meter(meter_id=meter_id)
    truth = [v if v is not None and v >= 0 else 7 for v in values]
    gappy = run_vee(spec, T0, end(len(values)), intervals=reads(values))
    full = run_vee(spec, T0, end(len(values)), intervals=reads(truth))
    store.write_intervals([IntervalRecord(meter_id, FORWARD_DELTA_KWH, v) for v in gappy.intervals])
    result = store.write_intervals(
        [IntervalRecord(meter_id, FORWARD_DELTA_KWH, v) for v in full.intervals]
    )
    replaceable = [
        g
        for g, f in zip(gappy.intervals, full.intervals, strict=True)
        if (g.wh is None or g.quality.edited) and g != f
    ]
    assert result.superseded == len(replaceable)
    stored = {s.value.end: s.value for s in store.readings([meter_id], T0, end(len(values) + 1))}
    for g, f in zip(gappy.intervals, full.intervals, strict=True):
        kept_measured = g.wh is not None and not g.quality.edited
        assert stored[g.end] == (g if kept_measured else f)
    history = store.superseded(meter_id, FORWARD_DELTA_KWH, T0, end(len(values) + 1))
    assert sorted(h.stored.value.end for h in history) == sorted(g.end for g in replaceable)
    assert all(
        h.stored.value.quality in (QualityCode.ESTIMATED, QualityCode.SUSPECT)
        or h.stored.value.wh is None
        or h.stored.value.quality.edited
        for h in history
    )
