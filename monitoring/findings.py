"""What each alert rule finds now: the conditions behind :class:`AlertBook.evaluate`.

>>> from powerbus.monitoring.health import HealthLog
>>> from powerbus.monitoring.rules import DEFAULT_RULES
>>> from powerbus.monitoring.topology import ServiceView, Topology
>>> graph = Topology(nodes=[], services=[ServiceView(name="Echo", nodes=(), healthy=())],
...                  declared=[], observed=[])
>>> [(f.rule.name, f.subject) for f in findings(DEFAULT_RULES, topology=graph,
...                                              rates=lambda s: {}, health=HealthLog())]
[('service-without-healthy-node', 'Echo')]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from powerbus.monitoring.alerts import Finding
from powerbus.monitoring.event_edges import EventRole
from powerbus.monitoring.gateway_quality import GatewayQuality
from powerbus.monitoring.health import HealthLog, OperatorHealth
from powerbus.monitoring.rules import AlertKind, AlertRule
from powerbus.monitoring.topology import Topology, TopologyNode
from powerbus.monitoring.window import Rates

__all__ = ["findings"]

RatesOver = Callable[[float], Mapping[Any, Rates]]
"""Live rates by service over the given number of seconds."""

QualityOver = Callable[[float], list[GatewayQuality]]
"""Meter data quality by gateway over the given number of seconds."""


def findings(
    rules: Iterable[AlertRule],
    *,
    topology: Topology,
    rates: RatesOver,
    health: HealthLog,
    quality: QualityOver = lambda _seconds: [],
) -> Iterator[Finding]:
    """Every (rule, subject) whose condition holds now."""
    cache: dict[float, Mapping[Any, Rates]] = {}
    for rule in rules:
        if rule.kind in (AlertKind.ERROR_SHARE, AlertKind.P99_LATENCY):
            seconds = rule.window.total_seconds()
            if seconds not in cache:
                cache[seconds] = rates(seconds)
            yield from _traffic(rule, cache[seconds])
        elif rule.kind is AlertKind.NODE_DOWN:
            yield from _nodes_down(rule, topology)
        elif rule.kind is AlertKind.NO_HEALTHY_NODE:
            for s in topology.services:
                if rule.matches_service(s.name) and not s.healthy:
                    why = "every node left" if s.left and not s.nodes else "no node is up"
                    yield Finding(rule, s.name, f"{s.name}: {why}; callers get UNAVAILABLE", 0)
        elif rule.kind is AlertKind.LEASE_FLAPPING:
            for n in topology.nodes:
                changes = health.changes_within(n.node_id, rule.window.total_seconds())
                if rule.matches_node(n.node_id) and changes >= rule.threshold:
                    yield Finding(
                        rule,
                        n.node_id,
                        f"{n.node_id} changed health {changes} times in {_span(rule)}",
                        float(changes),
                    )
        elif rule.kind is AlertKind.SUBSCRIBER_LAG:
            yield from _subscribers_behind(rule, topology)
        elif rule.kind is AlertKind.GATEWAY_QUALITY:
            yield from _gateways_short(rule, quality(rule.window.total_seconds()))


def _traffic(rule: AlertRule, by_service: Mapping[Any, Rates]) -> Iterator[Finding]:
    for service, r in sorted(by_service.items()):
        if not rule.matches_service(str(service)) or r.requests < rule.min_requests:
            continue
        if rule.kind is AlertKind.ERROR_SHARE and r.error_share > rule.threshold:
            yield Finding(
                rule,
                str(service),
                f"{service}: {r.error_share:.1%} of {r.requests} calls failed in {_span(rule)}"
                f" (threshold {rule.threshold:.1%})",
                round(r.error_share, 5),
            )
        elif rule.kind is AlertKind.P99_LATENCY:
            p99 = r.quantile(0.99)
            if p99 is not None and p99 > rule.threshold:
                yield Finding(
                    rule,
                    str(service),
                    f"{service}: p99 latency {p99 * 1000:.0f} ms over {_span(rule)}"
                    f" (threshold {rule.threshold * 1000:.0f} ms)",
                    round(p99, 6),
                )


def _nodes_down(rule: AlertRule, topology: Topology) -> Iterator[Finding]:
    for n in topology.nodes:
        if not rule.matches_node(n.node_id):
            continue
        if n.health is OperatorHealth.DOWN:
            # The registry marks a node down only once its lease lapsed: no hold on top.
            message = f"{n.node_id} ({n.kind}) is down: {_why_down(n)}"
            yield Finding(rule, n.node_id, message, confirmed=True)
        elif n.health is OperatorHealth.UNREACHABLE:
            yield Finding(
                rule,
                n.node_id,
                f"{n.node_id} ({n.kind}) is unreachable: the bus could not connect to it"
                f" on its recent calls (its lease has not lapsed yet)",
            )


def _subscribers_behind(rule: AlertRule, topology: Topology) -> Iterator[Finding]:
    for edge in topology.events:
        if edge.role is not EventRole.SUBSCRIBES or edge.lag is None:
            continue
        if rule.matches_node(edge.node) and edge.lag > rule.threshold:
            yield Finding(
                rule,
                edge.node,
                f"event subscriber {edge.node} is {edge.lag:,} events behind"
                f" (threshold {rule.threshold:,.0f}); it handles {edge.rate_per_s:.1f}/s",
                float(edge.lag),
            )


def _gateways_short(rule: AlertRule, gateways: list[GatewayQuality]) -> Iterator[Finding]:
    for q in gateways:
        share = q.received_share
        if not rule.matches_node(q.gateway) or share is None or q.expected < rule.min_requests:
            continue
        if share < rule.threshold:
            failed = ", ".join(f"{n} {kind}" for kind, n in sorted(q.failures.items()))
            yield Finding(
                rule,
                q.gateway,
                f"gateway {q.gateway}: {q.received} of {q.expected} readings received"
                f" ({share:.1%}) in {_span(rule)}, threshold {rule.threshold:.0%}"
                + (f"; failed reads: {failed}" if failed else "")
                + f" (polled by {q.node})",
                round(share, 4),
            )


def _why_down(n: TopologyNode) -> str:
    """What the record shows, no more: the lease, and how long the node has been silent."""
    if n.silent_s is None or n.lease_ttl_s is None:
        return "its lease lapsed"
    if n.silent_s < n.lease_ttl_s:
        return (
            f"marked down {n.silent_s:.0f} s after its last heartbeat,"
            f" before its {n.lease_ttl_s:g} s lease ran out"
        )
    return f"no heartbeat for {n.silent_s:.0f} s, so its {n.lease_ttl_s:g} s lease lapsed"


def _span(rule: AlertRule) -> str:
    seconds = rule.window.total_seconds()
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"
