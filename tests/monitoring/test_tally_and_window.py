"""Counting calls: histogram buckets, quantiles, and rates over a window of samples."""

from __future__ import annotations

import pytest

from powerbus.monitoring import LATENCY_BUCKETS_S, CallOrigin
from powerbus.monitoring.tally import BUCKET_COUNT, Sample, Tally, TallyKey, bucket_index, quantile
from powerbus.monitoring.window import SampleWindow, rates_by


def key(node: str = "n1", code: str = "OK") -> TallyKey:
    return TallyKey("svc", "M", node, "caller", code, CallOrigin.ROUTED)


def test_buckets_are_grpcs_standard_bounds_with_inclusive_upper_edges():
    assert len(LATENCY_BUCKETS_S) == 41 and BUCKET_COUNT == 42
    assert bucket_index(0.001) == LATENCY_BUCKETS_S.index(0.001)
    assert bucket_index(0.0010001) == LATENCY_BUCKETS_S.index(0.001) + 1
    assert bucket_index(1000.0) == BUCKET_COUNT - 1


def test_quantiles_interpolate_within_a_bucket():
    tally = Tally()
    for _ in range(99):
        tally.add(0.0015, 1, 1)  # (1ms, 2ms]
    tally.add(0.7, 1, 1)  # (0.65s, 0.8s]
    sample = tally.sample()
    p50 = sample.quantile(0.5)
    p99 = sample.quantile(0.99)
    p999 = sample.quantile(0.999)
    assert p50 is not None and 0.001 < p50 <= 0.002
    assert p99 is not None and p99 <= 0.002
    assert p999 is not None and 0.65 < p999 <= 0.8
    assert quantile(0.5, [0] * BUCKET_COUNT) is None


def test_samples_subtract_and_add():
    tally = Tally()
    tally.add(0.01, 10, 20)
    first = tally.sample()
    tally.add(0.02, 5, 7)
    delta = tally.sample() - first
    assert (delta.count, delta.bytes_in, delta.bytes_out) == (1, 5, 7)
    assert delta.latency_sum == pytest.approx(0.02)
    assert (first + delta).count == 2
    assert Sample.total([first, delta]).buckets == tally.sample().buckets


def test_window_rates_are_differences_over_the_window():
    window = SampleWindow(keep_s=60)
    ok, failed = Tally(), Tally()
    for second in range(11):
        for _ in range(10):
            ok.add(0.002, 1, 1)
        failed.add(0.002, 1, 1)
        window.add(100.0 + second, {key(): ok.sample(), key(code="UNAVAILABLE"): failed.sample()})
    deltas, seconds = window.deltas(5.0)
    assert seconds == 5.0
    rates = rates_by(deltas, seconds, lambda k: k.service)["svc"]
    assert (rates.requests, rates.errors) == (55, 5)
    assert rates.qps == pytest.approx(11.0)
    assert rates.error_share == pytest.approx(5 / 55)


def test_window_forgets_what_is_older_than_it_keeps():
    window = SampleWindow(keep_s=10)
    for second in range(100):
        window.add(float(second), {})
    _older, _newest, seconds = window.span(1000.0)
    assert seconds <= 11.0
