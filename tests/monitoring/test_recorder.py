"""The recorder: every call counted under bounded labels, calls in flight, unreachable nodes."""

from __future__ import annotations

from powerbus.monitoring import CallOrigin, CallRecord, LabelLimits, TrafficRecorder
from powerbus.monitoring.tally import Sample

ECHO = "powerbus.echo.v1.Echo"


def record(
    caller: str = "billing-1", node: str = "echo-1", code: str = "OK", *, reached: bool = True
) -> CallRecord:
    return CallRecord(ECHO, "Echo", node, caller, code, 0.002, 10, 20, reached=reached)


def test_every_call_is_counted_by_its_labels():
    recorder = TrafficRecorder()
    for _ in range(3):
        recorder.call_started(ECHO, "Echo", "echo-1")
        recorder.call_finished(record())
    recorder.call_finished(record(code="NOT_FOUND"))
    counts = {(k.caller, k.code): t.count for k, t in recorder.tallies().items()}
    assert counts == {("billing-1", "OK"): 3, ("billing-1", "NOT_FOUND"): 1}
    assert recorder.in_flight() == {}


def test_calls_in_flight_are_counted_until_they_finish():
    recorder = TrafficRecorder()
    recorder.call_started(ECHO, "Echo", "echo-1")
    recorder.call_started(ECHO, "Echo", "echo-1")
    assert recorder.in_flight() == {(ECHO, "Echo", "echo-1"): 2}
    recorder.call_finished(record())
    assert recorder.in_flight() == {(ECHO, "Echo", "echo-1"): 1}


def test_callers_past_the_limit_are_counted_as_other():
    recorder = TrafficRecorder(limits=LabelLimits(callers=3))
    for i in range(10):
        recorder.call_finished(record(caller=f"peer:10.0.0.{i}"))
    callers = sorted({k.caller for k in recorder.tallies()})
    assert callers == ["other", "peer:10.0.0.0", "peer:10.0.0.1", "peer:10.0.0.2"]
    assert sum(t.count for t in recorder.tallies().values()) == 10
    assert recorder.folded("caller") == 7
    # A caller seen before the limit keeps its own name.
    recorder.call_finished(record(caller="peer:10.0.0.1"))
    assert {k.caller: t.count for k, t in recorder.tallies().items()}["peer:10.0.0.1"] == 2


def test_a_node_the_bus_cannot_reach_is_unreachable_until_one_call_succeeds():
    now = [100.0]
    recorder = TrafficRecorder(clock=lambda: now[0])
    recorder.call_finished(record(code="UNAVAILABLE", reached=False))
    assert recorder.unreachable() == {}
    recorder.call_finished(record(code="UNAVAILABLE", reached=False))
    assert list(recorder.unreachable()) == ["echo-1"]
    now[0] += 60  # old failures do not count
    assert recorder.unreachable() == {}
    now[0] -= 60
    recorder.call_finished(record())
    assert recorder.unreachable() == {}


def test_an_application_error_shows_the_node_is_reachable():
    recorder = TrafficRecorder()
    for code in ("UNAVAILABLE", "NOT_FOUND", "UNAVAILABLE"):
        recorder.call_finished(record(code=code, reached=code != "UNAVAILABLE"))
    assert recorder.unreachable() == {}


def test_reported_calls_join_routed_ones_with_their_origin():
    recorder = TrafficRecorder()
    recorder.call_finished(record())
    recorder.add(
        service=ECHO,
        method="Echo",
        node_id="echo-1",
        caller="billing-1",
        code="OK",
        origin=CallOrigin.PROXYLESS,
        sample=Sample(count=5, latency_sum=0.01),
    )
    by_origin = {k.origin: t.count for k, t in recorder.tallies().items()}
    assert by_origin == {CallOrigin.ROUTED: 1, CallOrigin.PROXYLESS: 5}


def test_unchanged_tallies_share_their_samples():
    recorder = TrafficRecorder()
    recorder.call_finished(record())
    recorder.call_finished(record(node="echo-2"))
    first = recorder.sample()
    recorder.call_finished(record())
    second = recorder.sample()
    shared = [k for k in first if first[k] is second[k]]
    assert [k.node_id for k in shared] == ["echo-2"]
