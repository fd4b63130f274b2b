"""``/metrics``: the recorder's counts and the bus's state in Prometheus's text format.

Nothing is counted twice: a :class:`Collector` reads the recorder's tallies when Prometheus
scrapes, into an injected :class:`CollectorRegistry` (never the global one, so several
buses in one process do not mix). Labels are bounded by the recorder's label limits.

================================================  ==========================================
``powerbus_requests_total``                       calls by service, method, node, caller,
                                                  code, origin (routed, proxyless): each call
                                                  once, however many attempts it took
``powerbus_request_errors_total``                 calls whose code is not OK (same labels
                                                  but code)
``powerbus_attempts_total``                       attempts by service, node, code, origin
                                                  (a call retried once: two attempts)
``powerbus_retries_total``                        attempts retried or out-hedged, by service
``powerbus_iiop_requests_total``                  CORBA calls as the gateway saw them, by
                                                  service, method, node, caller, code (each
                                                  is also routed: counted there as a call)
``powerbus_request_duration_seconds``             latency histogram by service, method,
                                                  node, origin; gRPC's standard buckets
``powerbus_request_bytes_total``                  request bytes by service, method, node,
``powerbus_response_bytes_total``                 origin, and reply bytes
``powerbus_requests_in_flight``                   routed calls in flight by service,
                                                  method, node
``powerbus_node_up``                              1 when the node takes calls, by node, kind,
                                                  health
``powerbus_service_healthy_nodes``                healthy nodes by service
``powerbus_alerts_active``                        active alerts by rule and severity
``powerbus_label_values_folded_total``            label values counted as ``other``
================================================  ==========================================

With :class:`BalancerCollector`, each service's load-balancing state too:

================================================  ==========================================
``powerbus_balancer_panic``                       1 while the service's balancer is in panic
``powerbus_balancer_standby_active``              1 while standby nodes take the calls
``powerbus_service_breaker_state``                1 for the service breaker's state (closed,
                                                  open, half_open)
``powerbus_outlier_ejections_detected_total``     outlier ejections found, and
``powerbus_outlier_ejections_enforced_total``     carried out, by service
``powerbus_node_ejected``                         1 while the node is ejected, by service, node
``powerbus_node_in_rotation``                     1 while the node takes new calls
``powerbus_node_breaker_state``                   1 for the node breaker's state
================================================  ==========================================

>>> from powerbus.bus.kernel.calls import CallRecord
>>> recorder = TrafficRecorder()
>>> recorder.call_finished(CallRecord("Echo", "Echo", "echo-1", "demo", "OK", 0.002, 8, 9))
>>> registry = CollectorRegistry()
>>> registry.register(TrafficCollector(recorder, lambda: ([], []), lambda: []))
>>> for line in scrape(registry).decode().splitlines():
...     if line.startswith("powerbus_requests_total"):
...         print(line.replace(",", ", "))
powerbus_requests_total{caller="demo", code="OK", method="Echo", node="echo-1",
    origin="routed", service="Echo"} 1.0
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from powerbus.bus.kernel.calls import LATENCY_BUCKETS_S, CallOrigin
from powerbus.load_balancer import BalancerSnapshot, BreakerState, StatusCode
from powerbus.monitoring.alerts import Alert
from powerbus.monitoring.recorder import TrafficRecorder
from powerbus.monitoring.tally import Sample
from powerbus.monitoring.topology import ServiceView, TopologyNode

__all__ = ["BalancerCollector", "TrafficCollector", "scrape"]

_CALL = ["service", "method", "node", "caller", "code", "origin"]
_ROUTE = ["service", "method", "node", "origin"]
_BOUNDS = [repr(float(b)) for b in LATENCY_BUCKETS_S] + ["+Inf"]

State = Callable[[], tuple[Sequence[TopologyNode], Sequence[ServiceView]]]


class TrafficCollector(Collector):
    """Exports ``recorder`` and the bus's state (``state``, ``alerts``) at scrape time."""

    def __init__(
        self, recorder: TrafficRecorder, state: State, alerts: Callable[[], list[Alert]]
    ) -> None:
        self._recorder = recorder
        self._state = state
        self._alerts = alerts

    def collect(self) -> Iterator[Metric]:
        yield from self._traffic()
        yield from self._bus_state()

    def _traffic(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "powerbus_requests", "Calls, by how they ended.", labels=_CALL
        )
        errors = CounterMetricFamily(
            "powerbus_request_errors",
            "Calls whose status was not OK.",
            labels=[*_CALL[:4], "origin"],
        )
        duration = HistogramMetricFamily(
            "powerbus_request_duration_seconds",
            "Call latency as the bus saw it (gRPC's standard buckets).",
            labels=_ROUTE,
            unit="seconds",
        )
        sent = CounterMetricFamily(
            "powerbus_request_bytes", "Request message bytes.", labels=_ROUTE
        )
        received = CounterMetricFamily(
            "powerbus_response_bytes", "Response message bytes.", labels=_ROUTE
        )
        iiop = CounterMetricFamily(
            "powerbus_iiop_requests",
            "CORBA calls as the gateway saw them (each is counted as a call where routed).",
            labels=_CALL[:5],
        )
        by_route: dict[tuple[str, ...], list[Sample]] = {}
        failed: dict[tuple[str, ...], int] = {}
        for key, tally in list(self._recorder.tallies().items()):
            origin = key.origin.value
            if key.origin is CallOrigin.IIOP:
                # The gateway's gRPC call for it is routed (or proxyless) and counted there.
                iiop.add_metric(
                    [key.service, key.method, key.node_id, key.caller, key.code], tally.count
                )
                continue
            requests.add_metric(
                [key.service, key.method, key.node_id, key.caller, key.code, origin], tally.count
            )
            if key.code != StatusCode.OK:
                failing = (key.service, key.method, key.node_id, key.caller, origin)
                failed[failing] = failed.get(failing, 0) + tally.count
            by_route.setdefault((key.service, key.method, key.node_id, origin), []).append(
                tally.sample()
            )
        for labels, count in sorted(failed.items()):
            errors.add_metric(list(labels), count)
        for route, samples in sorted(by_route.items()):
            total = Sample.total(samples)
            running = 0
            buckets = []
            for bound, n in zip(_BOUNDS, total.buckets, strict=True):
                running += n
                buckets.append((bound, running))
            duration.add_metric(list(route), buckets, total.latency_sum)
            sent.add_metric(list(route), total.bytes_in)
            received.add_metric(list(route), total.bytes_out)
        in_flight = GaugeMetricFamily(
            "powerbus_requests_in_flight",
            "Routed calls sent to a node and not finished.",
            labels=["service", "method", "node"],
        )
        for (service, method, node), n in sorted(self._recorder.in_flight().items()):
            in_flight.add_metric([service, method, node], n)
        attempts = CounterMetricFamily(
            "powerbus_attempts",
            "Attempts to call a node, by how they ended; a retried call makes several.",
            labels=["service", "node", "code", "origin"],
        )
        for (service, node, code, by), n in sorted(self._recorder.attempts().items()):
            attempts.add_metric([service, node, code, by.value], n)
        retries = CounterMetricFamily(
            "powerbus_retries",
            "Attempts whose outcome was not the call's (retried elsewhere, or out-hedged).",
            labels=["service"],
        )
        for service, n in sorted(self._recorder.retries().items()):
            retries.add_metric([service], n)
        yield from (requests, errors, duration, sent, received, in_flight, attempts, retries, iiop)

    def _bus_state(self) -> Iterator[Metric]:
        nodes, services = self._state()
        up = GaugeMetricFamily(
            "powerbus_node_up",
            "1 when the node takes calls, else 0.",
            labels=["node", "kind", "health"],
        )
        for node in nodes:
            up.add_metric([node.node_id, node.kind, node.health.value], float(node.health.ok))
        healthy = GaugeMetricFamily(
            "powerbus_service_healthy_nodes",
            "Nodes of the service that are up.",
            labels=["service"],
        )
        for s in services:
            healthy.add_metric([s.name], len(s.healthy))
        alerts = GaugeMetricFamily(
            "powerbus_alerts_active", "Active alerts.", labels=["rule", "severity"]
        )
        counts: dict[tuple[str, str], int] = {}
        for alert in self._alerts():
            key = (alert.rule, alert.severity.value)
            counts[key] = counts.get(key, 0) + 1
        for (rule, severity), active in sorted(counts.items()):
            alerts.add_metric([rule, severity], active)
        folded = CounterMetricFamily(
            "powerbus_label_values_folded",
            "Label values counted as 'other' because the label had too many values.",
            labels=["label"],
        )
        for label in ("caller", "node", "service", "method"):
            folded.add_metric([label], self._recorder.folded(label))
        yield from (up, healthy, alerts, folded)


_BREAKER_STATES = [state.value for state in BreakerState]


class BalancerCollector(Collector):
    """Exports every service's balancer (``snapshots`` at scrape time): panic, standby,
    breakers, ejections, rotation. Labels are services and nodes, both bounded by the
    registry."""

    def __init__(self, snapshots: Callable[[], Iterable[BalancerSnapshot]]) -> None:
        self._snapshots = snapshots

    def collect(self) -> Iterator[Metric]:
        panic = GaugeMetricFamily(
            "powerbus_balancer_panic", "1 while the balancer is in panic.", labels=["service"]
        )
        standby = GaugeMetricFamily(
            "powerbus_balancer_standby_active",
            "1 while standby nodes take the service's calls.",
            labels=["service"],
        )
        breaker = GaugeMetricFamily(
            "powerbus_service_breaker_state",
            "1 for the service breaker's current state.",
            labels=["service", "state"],
        )
        detected = CounterMetricFamily(
            "powerbus_outlier_ejections_detected",
            "Outlier ejections found.",
            labels=["service"],
        )
        enforced = CounterMetricFamily(
            "powerbus_outlier_ejections_enforced",
            "Outlier ejections carried out.",
            labels=["service"],
        )
        ejected = GaugeMetricFamily(
            "powerbus_node_ejected", "1 while the node is ejected.", labels=["service", "node"]
        )
        rotation = GaugeMetricFamily(
            "powerbus_node_in_rotation",
            "1 while the node takes new calls.",
            labels=["service", "node"],
        )
        node_breaker = GaugeMetricFamily(
            "powerbus_node_breaker_state",
            "1 for the node breaker's current state.",
            labels=["service", "node", "state"],
        )
        for snap in sorted(self._snapshots(), key=lambda s: s.service):
            service = snap.service
            panic.add_metric([service], float(snap.panic))
            standby.add_metric([service], float(snap.standby_active))
            for state in _BREAKER_STATES:
                breaker.add_metric([service, state], float(snap.service_breaker == state))
            detected.add_metric([service], snap.ejections_detected)
            enforced.add_metric([service], snap.ejections_enforced)
            for node in snap.nodes:
                ejected.add_metric([service, node.node_id], float(node.ejected_for_s > 0))
                rotation.add_metric([service, node.node_id], float(node.in_rotation))
                for state in _BREAKER_STATES:
                    node_breaker.add_metric(
                        [service, node.node_id, state], float(node.breaker == state)
                    )
        yield from (panic, standby, breaker, detected, enforced, ejected, rotation, node_breaker)


def scrape(registry: CollectorRegistry) -> bytes:
    """The text exposition of ``registry`` (what ``/metrics`` answers)."""
    return generate_latest(registry)
