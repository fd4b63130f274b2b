"""The built-in ``event-subscriber-lag`` alert: raised while a real slow subscriber is
more than the threshold behind (its handler takes 20 ms an event, and it is stalled while
the dashboard is checked), shown on the dashboard's events panel, cleared once it has
caught up — a real bus, actor processes and Chromium on 127.0.0.1."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from events_support import (
    assert_exactly_once_in_order,
    get_json,
    panel_text,
    until,
    wait_exit,
    wait_for_count,
    wait_subscribed,
)

from powerbus.monitoring.alerts import Finding
from powerbus.monitoring.event_edges import EventEdge, EventRole
from powerbus.monitoring.findings import findings
from powerbus.monitoring.health import HealthLog
from powerbus.monitoring.rules import DEFAULT_RULES, AlertKind, parse_rules
from powerbus.monitoring.topology import Topology

N = 300
THRESHOLD = 40


def api(bus: Any, path: str) -> Any:
    return get_json(bus.http, path)


def position(bus: Any, subscriber: str, source: str) -> int | None:
    for s in api(bus, "/api/events")["subscribers"]:
        for mark in s["sources"] if s["subscriber"] == subscriber else []:
            if mark["source"] == source:
                return int(mark["position"])
    return None


def lag_alerts(bus: Any, key: str) -> list[dict[str, Any]]:
    return [a for a in api(bus, "/api/alerts")[key] if a["rule"] == "event-subscriber-lag"]


def test_the_rule_finds_subscribers_over_the_threshold_only() -> None:
    (default,) = [r for r in DEFAULT_RULES if r.kind is AlertKind.SUBSCRIBER_LAG]
    assert (default.name, default.threshold, default.hold.total_seconds()) == (
        "event-subscriber-lag",
        10_000,
        120,
    )
    (rule,) = parse_rules([{"name": "lag", "kind": "subscriber_lag", "threshold": 100}])
    edges = [
        EventEdge(
            node="crm-1", role=EventRole.SUBSCRIBES, topics=("",), rate_per_s=2, events=9, lag=101
        ),
        EventEdge(
            node="crm-2", role=EventRole.SUBSCRIBES, topics=("",), rate_per_s=2, events=9, lag=100
        ),
        EventEdge(node="meter-1", role=EventRole.PUBLISHES, topics=("m",), rate_per_s=2, events=9),
    ]
    graph = Topology(nodes=[], services=[], declared=[], observed=[], events=edges)
    found: list[Finding] = list(
        findings([rule], topology=graph, rates=lambda _s: {}, health=HealthLog())
    )
    assert [(f.subject, f.value) for f in found] == [("crm-1", 101.0)]
    assert "101 events behind" in found[0].message


def test_a_slow_subscriber_raises_the_lag_alert_shown_on_the_panel_and_cleared_when_caught_up(
    bus_factory, publisher, subscriber, tmp_path: Path
) -> None:
    config = tmp_path / "bus.toml"
    config.write_text(
        "[[alerts]]\n"
        'name = "event-subscriber-lag"\n'
        'kind = "subscriber_lag"\n'
        f"threshold = {THRESHOLD}\n"
        'for = "1s"\n'
    )
    bus = bus_factory(config=config)
    # Handling takes 20 ms an event: at most 50/s, slower than the publisher's burst.
    slow = subscriber(bus, name="slow-reader", label="slow", prefix="billing.", handle_s=0.02)
    wait_subscribed(bus.http, "billing.")
    # A first few, handled at once, give it a position on the source (lag 0)...
    wait_exit(publisher(bus, count=5, source="billing-7"))
    assert until(lambda: position(bus, "slow-reader", "billing-7") == 5, seconds=20)
    # ... then it stalls (SIGSTOP: however loaded the machine, it cannot catch up while the
    # alert and the dashboard are checked) and the burst comes: the same publisher's
    # database, continuing at 6.
    slow.handle.process.send_signal(signal.SIGSTOP)
    try:
        wait_exit(publisher(bus, count=N, source="billing-7"))
        raised = until(lambda: lag_alerts(bus, "active"), seconds=20)
        assert raised, api(bus, "/api/alerts")
        assert raised[0]["subject"] == "slow-reader" and raised[0]["value"] > THRESHOLD
        shown = {s["subscriber"]: s for s in api(bus, "/api/events")["subscribers"]}
        assert "events behind" in (shown["slow-reader"]["alert"] or ""), shown
        text = panel_text(bus.http, "#events-panel .lag-alert")
        assert "slow-reader" in text and "lag alert" in text, text
    finally:
        slow.handle.process.send_signal(signal.SIGCONT)

    # It catches up (nothing dropped, nothing doubled) and the alert clears.
    rows = wait_for_count(slow.db, N, timeout=40)
    assert_exactly_once_in_order(rows, {"billing-7": N})
    cleared = until(lambda: not lag_alerts(bus, "active") and lag_alerts(bus, "recent"), seconds=20)
    assert cleared, api(bus, "/api/alerts")
    assert cleared[0]["subject"] == "slow-reader" and cleared[0]["cleared_at"]
    shown = {s["subscriber"]: s for s in api(bus, "/api/events")["subscribers"]}
    assert shown["slow-reader"]["alert"] is None
