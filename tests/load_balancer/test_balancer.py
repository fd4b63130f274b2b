"""The balancer around the picker: health, ejection, breakers, standby, panic, zones, slow
start, and the refusals that name what is wrong. Time is a variable the test moves."""

from __future__ import annotations

import collections
import random

import pytest

from powerbus.load_balancer import (
    Balancer,
    BalancerSettings,
    BreakerSettings,
    Endpoint,
    Outcome,
    OutlierSettings,
    PickerKind,
    PickRequest,
    PrioritySettings,
    RefusalReason,
    SlowStartSettings,
    StatusCode,
    Tier,
)

FAIL = Outcome(False, 0.001, StatusCode.UNAVAILABLE)
OK = Outcome(True, 0.001)
BUSINESS_ERROR = Outcome(False, 0.001, StatusCode.NOT_FOUND)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def nodes(*ids: str, tier: Tier = Tier.PRIMARY, zone: str = "") -> list[Endpoint]:
    return [Endpoint(i, f"127.0.0.1:{7000 + n}", tier=tier, zone=zone) for n, i in enumerate(ids)]


def make(settings: BalancerSettings | None = None, **kwargs) -> tuple[Balancer, Clock]:
    clock = Clock()
    balancer = Balancer("svc", settings=settings, clock=clock, rng=random.Random(1), **kwargs)
    return balancer, clock


def call(balancer: Balancer, outcome: Outcome, request: PickRequest | None = None) -> str:
    endpoint = balancer.pick(request or PickRequest())
    assert endpoint is not None
    balancer.report(endpoint, outcome)
    return endpoint.node_id


def served(balancer: Balancer, n: int = 30) -> set[str]:
    return {call(balancer, OK) for _ in range(n)}


def failing(node: str):
    def outcome(chosen: str) -> Outcome:
        return FAIL if chosen == node else OK

    return outcome


def drive(balancer: Balancer, outcome_of, n: int) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    for _ in range(n):
        endpoint = balancer.pick(PickRequest())
        assert endpoint is not None
        counts[endpoint.node_id] += 1
        balancer.report(endpoint, outcome_of(endpoint.node_id))
    return counts


def no_breakers(**outlier) -> BalancerSettings:
    return BalancerSettings(
        node_breaker=BreakerSettings(enabled=False),
        service_breaker=BreakerSettings(enabled=False),
        outlier=OutlierSettings(**outlier),
    )


def test_consecutive_failures_eject_for_a_growing_capped_time():
    settings = no_breakers(consecutive_failures=3, base_ejection_s=10, max_ejection_s=25)
    balancer, clock = make(settings)
    balancer.update(nodes("a", "b", "c"))
    drive(balancer, failing("a"), 9)
    assert served(balancer) == {"b", "c"}
    assert balancer.snapshot().nodes[0].ejection_reason == "3 consecutive failures"
    clock.now += 10.1
    assert "a" in served(balancer)
    drive(balancer, failing("a"), 9)  # ejected again: 20 s this time
    clock.now += 10.1
    assert served(balancer) == {"b", "c"}
    clock.now += 10
    drive(balancer, failing("a"), 9)  # third time: capped at 25 s, not 30
    clock.now += 25.1
    assert "a" in served(balancer)


def test_business_errors_are_not_failures():
    balancer, _ = make(no_breakers(consecutive_failures=2))
    balancer.update(nodes("a", "b"))
    for _ in range(20):
        call(balancer, BUSINESS_ERROR)
    assert served(balancer) == {"a", "b"}


@pytest.mark.parametrize("count", [2, 3])
def test_small_services_keep_a_minimum_of_healthy_nodes(count):
    balancer, _ = make(no_breakers(consecutive_failures=2, min_healthy=1, max_ejected_share=1.0))
    balancer.update(nodes(*"abc"[:count]))
    drive(balancer, lambda _node: FAIL, 40)
    snapshot = balancer.snapshot()
    assert sum(1 for n in snapshot.nodes if n.ejected_for_s == 0) == 1
    assert snapshot.ejections_detected > snapshot.ejections_enforced


def test_max_ejected_share_limits_ejections():
    balancer, _ = make(no_breakers(consecutive_failures=1, max_ejected_share=0.34, min_healthy=0))
    balancer.update(nodes("a", "b", "c"))
    drive(balancer, lambda _node: FAIL, 30)
    assert sum(1 for n in balancer.snapshot().nodes if n.ejected_for_s > 0) == 1


def test_failure_share_over_an_interval_ejects():
    settings = no_breakers(
        consecutive_failures=0, interval_s=10, failure_share=0.5, min_requests=10
    )
    balancer, clock = make(settings)
    balancer.update(nodes("a", "b"))
    flip = iter(range(1000))
    drive(balancer, lambda n: FAIL if n == "a" and next(flip) % 3 else OK, 60)
    assert {e.node_id for e in balancer.rotation()} == {"a", "b"}  # the interval goes on
    clock.now += 10
    assert served(balancer) == {"b"}


def test_node_breaker_opens_then_half_opens_with_limited_probes_then_closes():
    breaker = BreakerSettings(window=10, min_calls=4, failure_ratio=0.5, open_s=5, probes=2)
    settings = BalancerSettings(
        node_breaker=breaker,
        outlier=OutlierSettings(enabled=False),
        service_breaker=BreakerSettings(enabled=False),
    )
    balancer, clock = make(settings)
    balancer.update(nodes("a", "b"))
    drive(balancer, failing("a"), 10)
    assert served(balancer) == {"b"}
    assert balancer.snapshot().nodes[0].breaker == "open"
    clock.now += 5
    # Half open: two probes at a time; while both are out, "a" is out of rotation.
    picks = [balancer.pick(PickRequest()) for _ in range(6)]
    probes = [p for p in picks if p.node_id == "a"]
    assert len(probes) == 2
    for p in picks:
        balancer.report(p, OK)
    assert balancer.snapshot().nodes[0].breaker == "closed"
    assert "a" in served(balancer)


def test_a_failed_probe_reopens_for_longer():
    breaker = BreakerSettings(window=4, min_calls=4, failure_ratio=0.5, open_s=5, probes=1)
    settings = BalancerSettings(
        node_breaker=breaker,
        outlier=OutlierSettings(enabled=False),
        service_breaker=BreakerSettings(enabled=False),
    )
    balancer, clock = make(settings)
    balancer.update(nodes("a", "b"))
    drive(balancer, failing("a"), 8)
    clock.now += 5
    drive(balancer, failing("a"), 4)  # the probe fails: open for 10 s now
    clock.now += 6
    assert served(balancer) == {"b"}
    clock.now += 4
    assert "a" in served(balancer)


def test_every_breaker_open_is_refused_naming_service_and_nodes():
    breaker = BreakerSettings(window=4, min_calls=2, failure_ratio=0.5, open_s=5)
    settings = BalancerSettings(
        node_breaker=breaker,
        outlier=OutlierSettings(enabled=False),
        service_breaker=BreakerSettings(enabled=False),
    )
    balancer, _ = make(settings)
    balancer.update(nodes("a", "b"))
    drive(balancer, lambda _n: FAIL, 4)
    assert balancer.pick(PickRequest()) is None
    refusal = balancer.refusal()
    assert refusal.reason is RefusalReason.NODE_BREAKER_OPEN
    assert "circuit breaker open for service svc" in refusal.message
    assert "a (probing in" in refusal.message and "b (probing in" in refusal.message
    assert refusal.nodes == ("a", "b")


def test_service_breaker_refuses_calls_until_its_interval_ends():
    service = BreakerSettings(window=10, min_calls=5, failure_ratio=0.8, open_s=2, probes=1)
    settings = BalancerSettings(
        service_breaker=service,
        node_breaker=BreakerSettings(enabled=False),
        outlier=OutlierSettings(enabled=False),
    )
    balancer, clock = make(settings)
    balancer.update(nodes("a", "b"))
    drive(balancer, lambda _n: FAIL, 5)
    refusal = balancer.admit()
    assert refusal is not None and refusal.reason is RefusalReason.SERVICE_BREAKER_OPEN
    assert "service svc" in refusal.message and "probing again in 2.0s" in refusal.message
    clock.now += 2
    assert balancer.admit() is None  # the probe
    assert balancer.admit() is not None  # only one at a time
    call(balancer, OK)
    assert balancer.admit() is None and balancer.admit() is None


def test_health_checks_take_nodes_out_and_bring_them_back():
    balancer, _ = make()
    balancer.update(nodes("a", "b"))
    balancer.health_checked("a", passed=False)
    assert served(balancer) == {"a", "b"}  # one failure is below the threshold of 2
    balancer.health_checked("a", passed=False)
    assert served(balancer) == {"b"}
    balancer.health_checked("a", passed=True)
    assert served(balancer) == {"b"}
    balancer.health_checked("a", passed=True)
    assert served(balancer) == {"a", "b"}


def test_standby_serves_only_while_too_few_primaries_are_usable():
    balancer, _ = make(BalancerSettings(priority=PrioritySettings(standby_threshold=0.7)))
    balancer.update(nodes("p1", "p2") + nodes("s1", tier=Tier.STANDBY))
    assert served(balancer) == {"p1", "p2"}
    for _ in range(2):
        balancer.health_checked("p1", passed=False)
    assert served(balancer) == {"p2", "s1"}  # 1 of 2 primaries: below 70 %
    assert balancer.standby_active
    for _ in range(2):
        balancer.health_checked("p1", passed=True)
    assert served(balancer) == {"p1", "p2"}  # primaries back: standby gives it back
    balancer.update(nodes("s1", tier=Tier.STANDBY))
    assert served(balancer) == {"s1"}  # every primary gone


def test_panic_spreads_load_over_everyone_when_too_few_are_healthy():
    balancer, _ = make(BalancerSettings(panic_threshold=0.5))
    balancer.update(nodes("a", "b", "c"))
    for node in ("a", "b"):
        for _ in range(2):
            balancer.health_checked(node, passed=False)
    assert balancer.panic
    assert served(balancer) == {"a", "b", "c"}


def test_without_panic_the_refusal_says_why_each_node_is_out():
    balancer, _ = make(BalancerSettings(panic_threshold=0.0))
    balancer.update(nodes("a", "b"))
    for node in ("a", "b"):
        for _ in range(2):
            balancer.health_checked(node, passed=False)
    assert balancer.pick(PickRequest()) is None
    refusal = balancer.refusal()
    assert refusal.reason is RefusalReason.NO_HEALTHY_NODE
    assert "a (failing health checks)" in refusal.message


def test_zone_preference_while_the_local_zone_has_nodes():
    balancer, _ = make(local_zone="north")
    balancer.update(nodes("n1", zone="north") + nodes("s1", "s2", zone="south"))
    assert served(balancer) == {"n1"}
    for _ in range(2):
        balancer.health_checked("n1", passed=False)
    assert served(balancer) == {"s1", "s2"}


def test_slow_start_ramps_a_new_node_up():
    settings = BalancerSettings(
        picker=PickerKind.RANDOM, slow_start=SlowStartSettings(window_s=60, min_weight=0.1)
    )
    balancer, clock = make(settings)
    balancer.update(nodes("old"))
    balancer.update(nodes("old", "new"))
    early = drive(balancer, lambda _n: OK, 2000)
    assert early["new"] < 0.15 * 2000
    clock.now += 30
    middle = drive(balancer, lambda _n: OK, 2000)
    assert 0.25 * 2000 < middle["new"] < 0.42 * 2000  # weight 50 against 100
    clock.now += 31
    late = drive(balancer, lambda _n: OK, 2000)
    assert abs(late["new"] - 1000) < 120


def test_retries_avoid_the_node_that_failed():
    balancer, _ = make(BalancerSettings(picker=PickerKind.LEAST_REQUEST))
    balancer.update(nodes("a", "b", "c"))
    for _ in range(50):
        endpoint = balancer.pick(PickRequest(exclude=frozenset({"b"})))
        assert endpoint.node_id != "b"
        balancer.report(endpoint, OK)


@pytest.mark.parametrize("kind", list(PickerKind))
def test_every_picker_kind_counts_calls_in_flight(kind):
    balancer, _ = make(BalancerSettings(picker=kind))
    balancer.update(nodes("a", "b"))
    picks = [balancer.pick(PickRequest(key="k")) for _ in range(5)]
    assert balancer.active == 5
    for p in picks:
        balancer.report(p, OK)
    assert balancer.active == 0
    assert balancer.snapshot().picker == kind.value


def test_policy_change_takes_effect_at_once():
    balancer, _ = make()
    balancer.update(nodes("a", "b"))
    assert [call(balancer, OK) for _ in range(4)] == ["a", "b", "a", "b"]
    balancer.configure(BalancerSettings(picker=PickerKind.RING_HASH))
    keyed = {call(balancer, OK, PickRequest(key="meter-7")) for _ in range(10)}
    assert len(keyed) == 1
