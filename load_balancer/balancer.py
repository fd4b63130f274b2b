"""One service's balancer: which of its nodes may take a call now, and which one does.

Around the picker algorithm (:class:`~powerbus.load_balancer.settings.PickerKind`) it
keeps, per node, active health-check results, outlier ejection, a circuit breaker and a
slow-start ramp, and per service a circuit breaker. From those it works out the nodes in
rotation, in this order:

1. *usable* nodes: passing health checks, not ejected, breaker not open (a half-open
   breaker lets a few probe calls through);
2. *priority*: the usable primaries, joined by the usable standbys while fewer than
   ``standby_threshold`` of the primaries are usable;
3. *panic*: if the rotation holds fewer than ``panic_threshold`` of the group's nodes,
   health and ejection are ignored (open breakers still are not);
4. *zone*: only nodes of the local zone, while at least ``min_healthy`` of them are left;
5. *slow start*: new nodes' weights ramp up.

This is recomputed when something changes (membership, a node's state, time passing an
ejection's or a breaker's end), never on the call path: a pick is a clock read, one
comparison and the algorithm's own pick.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import time
from collections.abc import Callable, Sequence

from powerbus.load_balancer.breaker import BreakerState, CircuitBreaker
from powerbus.load_balancer.endpoint import Endpoint, Tier
from powerbus.load_balancer.outlier import OutlierDetector
from powerbus.load_balancer.picker import UNUSED, Outcome, Picker, PickRequest
from powerbus.load_balancer.pickers import make_picker
from powerbus.load_balancer.refusal import BalancerSnapshot, NodeView, Refusal, RefusalReason
from powerbus.load_balancer.settings import BalancerSettings

__all__ = ["Balancer"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class _Node:
    __slots__ = ("breaker", "endpoint", "failing_checks", "healthy", "joined", "passing_checks")

    def __init__(self, endpoint: Endpoint, settings: BalancerSettings, joined: float) -> None:
        self.endpoint = endpoint
        self.joined = joined
        self.healthy = True
        self.passing_checks = 0
        self.failing_checks = 0
        self.breaker = CircuitBreaker(settings.node_breaker)


class Balancer:
    """Balances one service's calls over its nodes; a :class:`Picker` itself.

    >>> b = Balancer("powerbus.echo.v1.Echo", clock=lambda: 0.0)
    >>> b.update([Endpoint("echo-1", "127.0.0.1:7001"), Endpoint("echo-2", "127.0.0.1:7002")])
    >>> [b.pick(PickRequest()).node_id for _ in range(2)]
    ['echo-1', 'echo-2']
    >>> b.update([])
    >>> b.pick(PickRequest()) is None, b.refusal().reason.value
    (True, 'no_node')
    """

    def __init__(
        self,
        service: str,
        *,
        settings: BalancerSettings | None = None,
        local_zone: str = "",
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.service = service
        self.local_zone = local_zone
        self._settings = settings or BalancerSettings()
        self._clock = clock
        self._rng = rng or random.Random()
        self._picker: Picker = make_picker(self._settings, rng=self._rng, clock=clock)
        self._nodes: dict[str, _Node] = {}
        self._outlier = OutlierDetector(self._settings.outlier)
        self._service_breaker = CircuitBreaker(self._settings.service_breaker)
        self._rotation: tuple[Endpoint, ...] = ()
        self._next_event = math.inf
        self._seen_members = False
        self.panic = False
        """The last refresh found too few usable nodes and ignored health and ejection."""
        self.standby_active = False
        """Standby nodes are in rotation."""
        self.active = 0
        """Calls in flight through this balancer."""

    @property
    def settings(self) -> BalancerSettings:
        return self._settings

    def configure(self, settings: BalancerSettings) -> None:
        """Apply new settings (a policy change): a new picker, fresh breakers and ejection
        state; membership and health-check results stay."""
        if settings == self._settings:
            return
        self._settings = settings
        self._picker = make_picker(settings, rng=self._rng, clock=self._clock)
        self._outlier = OutlierDetector(settings.outlier)
        self._outlier.members(self._nodes, now=self._clock())
        self._service_breaker = CircuitBreaker(settings.service_breaker)
        for node in self._nodes.values():
            node.breaker = CircuitBreaker(settings.node_breaker)
        self._refresh(self._clock())

    def members(self) -> tuple[Endpoint, ...]:
        """Every node of the service the balancer knows, in rotation or not."""
        return tuple(n.endpoint for n in self._nodes.values())

    def update(self, endpoints: Sequence[Endpoint]) -> None:
        """The service's live nodes, from the registry."""
        now = self._clock()
        # The first nodes seen are not "new": slow start is for nodes that join later.
        joined = now if self._seen_members else -math.inf
        nodes: dict[str, _Node] = {}
        for e in endpoints:
            node = self._nodes.get(e.node_id)
            if node is None or node.endpoint.address != e.address:
                node = _Node(e, self._settings, joined)
            node.endpoint = e
            nodes[e.node_id] = node
        self._nodes = nodes
        self._seen_members = self._seen_members or bool(nodes)
        self._outlier.members(nodes, now=now)
        self._refresh(now)

    def admit(self) -> Refusal | None:
        """Whether the service's breaker lets a call through now; the refusal if not."""
        breaker = self._service_breaker
        if breaker.state is BreakerState.CLOSED:
            return None
        now = self._clock()
        if breaker.allow(now=now):
            breaker.started()
            return None
        return Refusal(
            reason=RefusalReason.SERVICE_BREAKER_OPEN,
            service=self.service,
            message=(
                f"circuit breaker open for service {self.service}: "
                f"{breaker.tripped_ratio:.0%} of recent calls failed; "
                f"probing again in {breaker.retry_after(now):.1f}s"
            ),
            retry_after_s=breaker.retry_after(now),
        )

    def pick(self, request: PickRequest) -> Endpoint | None:
        now = self._clock()
        if now >= self._next_event:
            self._refresh(now)
        endpoint = self._picker.pick(request)
        if endpoint is None:
            return None
        self.active += 1
        node = self._nodes.get(endpoint.node_id)
        if node is not None and node.breaker.state is BreakerState.HALF_OPEN:
            node.breaker.started()
            if not node.breaker.allow(now=now):
                self._refresh(now)  # probe slots taken: out of rotation until one reports
        return endpoint

    def pick_each(self, request: PickRequest, *, limit: int | None = None) -> list[Endpoint]:
        """Distinct endpoints for one call each (forking, broadcast): up to ``limit``, or
        every node in rotation. Each must be reported (or released) like any pick."""
        chosen: list[Endpoint] = []
        used = set(request.exclude)
        for _ in range(len(self._rotation) if limit is None else limit):
            endpoint = self.pick(PickRequest(request.method, request.key, frozenset(used)))
            if endpoint is None:
                break
            if endpoint.node_id in used:
                self.release(endpoint)
                break
            used.add(endpoint.node_id)
            chosen.append(endpoint)
        return chosen

    def release(self, endpoint: Endpoint) -> None:
        """Give back a pick that was not used for a call; nothing is learned from it."""
        self.active = max(0, self.active - 1)
        self._picker.report(endpoint, UNUSED)
        node = self._nodes.get(endpoint.node_id)
        if node is not None and node.breaker.release():
            self._refresh(self._clock())

    def report(self, endpoint: Endpoint, outcome: Outcome) -> None:
        """How a call to ``endpoint`` (from :meth:`pick`) ended."""
        if outcome is UNUSED:
            self.release(endpoint)
            return
        self.active = max(0, self.active - 1)
        self._picker.report(endpoint, outcome)
        failed = outcome.code in self._settings.failure_codes
        now = self._clock()
        self._service_breaker.record(failed=failed, now=now)
        node = self._nodes.get(endpoint.node_id)
        if node is None:
            return
        half_open = node.breaker.state is BreakerState.HALF_OPEN
        changed = node.breaker.record(failed=failed, now=now)
        changed = self._outlier.record(endpoint.node_id, failed=failed, now=now) or changed
        if changed or half_open:
            if changed:
                self._log_node(node, now)
            self._refresh(now)

    def health_checked(self, node_id: str, *, passed: bool) -> None:
        """An active health check of ``node_id`` passed or failed."""
        node = self._nodes.get(node_id)
        if node is None:
            return
        health = self._settings.health
        if passed:
            node.passing_checks += 1
            node.failing_checks = 0
            back = not node.healthy and node.passing_checks >= health.healthy_threshold
            if back:
                node.healthy = True
                log.info("%s: %s passes health checks again", self.service, node_id)
            if self._outlier.uneject(node_id) or back:
                self._refresh(self._clock())
        else:
            node.failing_checks += 1
            node.passing_checks = 0
            if node.healthy and node.failing_checks >= health.unhealthy_threshold:
                node.healthy = False
                log.warning("%s: %s fails health checks", self.service, node_id)
                self._refresh(self._clock())

    def rotation(self) -> tuple[Endpoint, ...]:
        """The nodes the picker chooses among now, with their slow-start weights."""
        return self._rotation

    def refusal(self) -> Refusal:
        """Why :meth:`pick` found nothing, naming the service and its nodes."""
        now = self._clock()
        if not self._nodes:
            return Refusal(
                reason=RefusalReason.NO_NODE,
                service=self.service,
                message=f"service {self.service} has no healthy node",
            )
        open_nodes = [n for n in self._nodes.values() if not n.breaker.allow(now=now)]
        if len(open_nodes) == len(self._nodes):
            waits = {n.endpoint.node_id: n.breaker.retry_after(now) for n in open_nodes}
            named = ", ".join(f"{k} (probing in {v:.1f}s)" for k, v in sorted(waits.items()))
            return Refusal(
                reason=RefusalReason.NODE_BREAKER_OPEN,
                service=self.service,
                message=f"circuit breaker open for service {self.service} on node {named}",
                nodes=tuple(sorted(waits)),
                retry_after_s=min(waits.values()),
            )
        out = sorted(self._nodes)
        return Refusal(
            reason=RefusalReason.NO_HEALTHY_NODE,
            service=self.service,
            message=(
                f"service {self.service} has no node in rotation: "
                + ", ".join(f"{i} ({self._why_out(self._nodes[i], now)})" for i in out)
            ),
            nodes=tuple(out),
        )

    def snapshot(self) -> BalancerSnapshot:
        """The state of every node, for operators (``/api/balancers``)."""
        now = self._clock()
        in_rotation = {e.node_id: e.weight for e in self._rotation}
        views = tuple(
            NodeView(
                node_id=node_id,
                address=n.endpoint.address,
                tier=n.endpoint.tier.value,
                zone=n.endpoint.zone,
                weight=n.endpoint.weight,
                in_rotation=node_id in in_rotation,
                effective_weight=in_rotation.get(node_id, 0),
                healthy=n.healthy,
                ejected_for_s=round(max(0.0, self._outlier.ejected_until(node_id) - now), 3),
                ejection_reason=self._outlier.reason(node_id)
                if self._outlier.ejected(node_id, now)
                else "",
                breaker=n.breaker.state.value,
                breaker_retry_after_s=round(n.breaker.retry_after(now), 3),
            )
            for node_id, n in sorted(self._nodes.items())
        )
        return BalancerSnapshot(
            service=self.service,
            picker=self._settings.picker.value,
            panic=self.panic,
            standby_active=self.standby_active,
            service_breaker=self._service_breaker.state.value,
            active=self.active,
            ejections_detected=self._outlier.detected,
            ejections_enforced=self._outlier.enforced,
            nodes=views,
        )

    def _usable(self, node: _Node, now: float) -> bool:
        return (
            node.healthy
            and not self._outlier.ejected(node.endpoint.node_id, now)
            and node.breaker.allow(now=now)
        )

    def _why_out(self, node: _Node, now: float) -> str:
        if not node.breaker.allow(now=now):
            return f"breaker {node.breaker.state.value}"
        if self._outlier.ejected(node.endpoint.node_id, now):
            return f"ejected: {self._outlier.reason(node.endpoint.node_id)}"
        if not node.healthy:
            return "failing health checks"
        if node.endpoint.tier is Tier.STANDBY:
            return "standby"
        return "other zone"

    def _refresh(self, now: float) -> None:
        settings = self._settings
        self._outlier.tick(now)
        nodes = list(self._nodes.values())
        primaries = [n for n in nodes if n.endpoint.tier is Tier.PRIMARY]
        usable_primaries = [n for n in primaries if self._usable(n, now)]
        threshold = settings.priority.standby_threshold
        if primaries and len(usable_primaries) >= threshold * len(primaries):
            group, pool = primaries, usable_primaries
        else:
            group = nodes
            pool = usable_primaries + [
                n for n in nodes if n.endpoint.tier is Tier.STANDBY and self._usable(n, now)
            ]
        self.standby_active = any(n.endpoint.tier is Tier.STANDBY for n in pool)
        # Open breakers refuse on purpose; panic is about health and ejection only.
        allowed = [n for n in group if n.breaker.allow(now=now)]
        panic = bool(allowed) and len(pool) < settings.panic_threshold * len(allowed)
        if panic:
            pool = allowed
        if panic != self.panic:
            log.warning(
                "%s: panic mode %s (%d of %d nodes usable)",
                self.service,
                "on" if panic else "off",
                len(pool),
                len(group),
            )
        self.panic = panic
        zone = self.local_zone
        if zone and settings.zone.prefer_local:
            local = [n for n in pool if n.endpoint.zone == zone]
            if len(local) >= max(1, settings.zone.min_healthy):
                pool = local
        self._rotation = tuple(self._weighted(n, now) for n in pool)
        self._picker.update(self._rotation)
        self._next_event = self._next_change(now)

    def _weighted(self, node: _Node, now: float) -> Endpoint:
        slow = self._settings.slow_start
        age = now - node.joined
        if slow.window_s <= 0 or age >= slow.window_s:
            return node.endpoint
        ramp = max(slow.min_weight, (max(age, 0.0) / slow.window_s) ** (1.0 / slow.aggression))
        weight = max(1, round(node.endpoint.weight * ramp))
        return dataclasses.replace(node.endpoint, weight=weight)

    def _next_change(self, now: float) -> float:
        events = [self._outlier.next_event()]
        for node in self._nodes.values():
            if node.breaker.state is BreakerState.OPEN:
                events.append(node.breaker.open_until)
        slow = self._settings.slow_start
        if slow.window_s > 0 and any(now - n.joined < slow.window_s for n in self._nodes.values()):
            events.append(now + min(1.0, slow.window_s / 20))
        return min(events)

    def _log_node(self, node: _Node, now: float) -> None:
        node_id = node.endpoint.node_id
        if node.breaker.state is BreakerState.OPEN and node.breaker.open_until > now:
            log.warning(
                "%s: circuit breaker of %s open for %.1fs",
                self.service,
                node_id,
                node.breaker.retry_after(now),
            )
        elif self._outlier.ejected(node_id, now):
            log.warning(
                "%s: %s ejected for %.1fs (%s)",
                self.service,
                node_id,
                self._outlier.ejected_until(node_id) - now,
                self._outlier.reason(node_id),
            )
