"""``Monitoring``: everything the bus does to watch itself, started and stopped as one.

Once a second a tick samples the recorder (for the live window), evaluates the alert
rules and, while a browser listens, publishes the overview. Every ten seconds (on the
wall clock's tens) what was counted goes to the database as a 10 s rollup; once a
minute the rollups are compacted and pruned. Database work runs in a thread, through a
queue, so a slow database delays history, never the router or the tick.

>>> # monitoring = Monitoring(config=MonitoringConfig(), db_url="sqlite:///bus.db",
>>> #                         directory=registry.directory, lease_ttl=timedelta(seconds=10))
>>> # router = Router(..., observer=monitoring.observer)
>>> # traffic_pb2_grpc.add_TrafficReportsServicer_to_server(monitoring.reports, server)
>>> # async with monitoring: app = create_http_app(directory, routes=monitoring.routes())
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy.engine import Engine
from starlette.routing import BaseRoute

from powerbus.bus.kernel.calls import CallObserver, NullObserver
from powerbus.bus.kernel.database import create_engine
from powerbus.bus.kernel.lifecycle import Lifecycle
from powerbus.bus.kernel.nodes import DirectoryView, NodeHealth
from powerbus.bus.kernel.peers import PeerRateLimit
from powerbus.load_balancer import BalancerSnapshot
from powerbus.monitoring.alert_log import AlertLog
from powerbus.monitoring.alert_views import alert_json, alerts_json
from powerbus.monitoring.alerts import GROUP_SUBJECT, Alert, AlertBook
from powerbus.monitoring.api import monitoring_routes
from powerbus.monitoring.config import MonitoringConfig
from powerbus.monitoring.delivery import WebhookDelivery
from powerbus.monitoring.directory_graph import directory_graph
from powerbus.monitoring.event_edges import EventEdges
from powerbus.monitoring.findings import findings
from powerbus.monitoring.gateway_quality import (
    GatewayQuality,
    GatewayQualityBook,
    QualityFeed,
    follow,
    quality_json,
    quality_keep_s,
)
from powerbus.monitoring.health import HealthLog
from powerbus.monitoring.history import RollupStore
from powerbus.monitoring.impact import Impact, impact_of
from powerbus.monitoring.metrics import BalancerCollector, TrafficCollector, scrape
from powerbus.monitoring.migrations import MIGRATIONS
from powerbus.monitoring.recorder import LabelLimits, TrafficRecorder
from powerbus.monitoring.reports import TrafficReportsServicer
from powerbus.monitoring.rules import AlertKind, AlertRule
from powerbus.monitoring.silences import Silences
from powerbus.monitoring.stream import Broadcaster
from powerbus.monitoring.tally import Sample, TallyKey
from powerbus.monitoring.topology import (
    ObservedEdge,
    ServiceView,
    Topology,
    TopologyNode,
)
from powerbus.monitoring.views import breakdown_json, overview_json
from powerbus.monitoring.window import Rates, SampleWindow, rates_by

__all__ = ["Monitoring"]

log = logging.getLogger(__name__)

_FINE_KEEP_S = 180.0
_COARSE_EVERY_S = 10.0
_ROLLUP_S = 10
_COMPACT_EVERY_S = 60.0
_SEED_EDGES_S = 3600.0
"""Edges seen in the last hour of history are drawn after a restart too."""
_QUALITY_EVERY_S = 5.0


class Monitoring(Lifecycle):
    """Traffic recording, history, topology, alerts and the dashboard of one bus."""

    def __init__(
        self,
        *,
        config: MonitoringConfig,
        db_url: str,
        directory: DirectoryView,
        lease_ttl: timedelta,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.directory = directory
        self.recorder = TrafficRecorder(
            limits=LabelLimits(callers=config.max_callers, nodes=config.max_nodes)
        )
        self.reports = TrafficReportsServicer(
            self.recorder,
            rate=PeerRateLimit(
                "traffic reports", rate=config.report_rate, burst=config.report_burst
            ),
        )
        self.alerts = AlertBook(group_at=config.alert_group_at)
        self.silences = Silences(clock=clock)
        self.delivery = WebhookDelivery(
            [u.strip() for u in config.alert_webhooks.split(",") if u.strip()],
            timeout=config.alert_webhook_timeout.total_seconds(),
            external_url=lambda: self.external_url,
            silenced=self.silences.silenced,
        )
        self.external_url = ""
        """The dashboard's URL, for links in delivered alerts (set by the bus)."""
        self.health = HealthLog()
        self.broadcaster = Broadcaster()
        self.registry = CollectorRegistry(auto_describe=False)
        self._event_edges: EventEdges = list
        self._quality_feed: QualityFeed | None = None
        self.quality = GatewayQualityBook(keep_s=quality_keep_s(config.rules))
        self.registry.register(TrafficCollector(self.recorder, self._state, self.alerts.active))
        self.now = clock
        self._db_url = db_url
        self._lease_ttl = lease_ttl
        longest = _traffic_window(config.rules)
        self._fine = SampleWindow(keep_s=_FINE_KEEP_S)
        self._coarse = SampleWindow(keep_s=max(longest, config.edge_window.total_seconds()) + 60)
        self._last_coarse = -math.inf
        self._seeded_edges: set[tuple[str, str, str]] = set()
        self._engine: Engine | None = None
        self._store: RollupStore | None = None
        self._alert_log: AlertLog | None = None
        self._writes: asyncio.Queue[Callable[[], object]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._unsubscribe: Callable[[], None] = lambda: None
        self._flushed: dict[TallyKey, Sample] = {}
        self._flushed_window = 0
        self._writer = f"{socket.gethostname()}:{os.getpid()}"

    @property
    def observer(self) -> CallObserver:
        """What the router tells about each call."""
        return self.recorder if self.config.record_traffic else NullObserver()

    def routes(self) -> list[BaseRoute]:
        """The dashboard, ``/metrics`` and ``/api/...`` routes (see ``monitoring.api``)."""
        return monitoring_routes(self)

    # Lifecycle.

    async def start(self) -> None:
        if self._tasks:
            return
        self._unsubscribe = self.directory.add_listener(self.health.on_change)
        restored = await self._open_history() if self.config.history else []
        self._restore_alerts(restored)
        self._sample()
        self._flushed_window = self._window_start(self.now())
        self._flushed = dict(self._fine.latest)
        # Listeners added after the history was restored: old alerts are not sent again.
        self.alerts.add_listener(self.delivery.offer)
        self.alerts.add_listener(self._cleared)
        await self.delivery.start()
        self._tasks = [
            asyncio.create_task(self._tick_forever(), name="monitoring-tick"),
            asyncio.create_task(self._write_forever(), name="monitoring-writer"),
        ]
        if self._quality_feed is not None:
            self._tasks.append(
                asyncio.create_task(
                    follow(self._quality_feed, self.quality, every_s=_QUALITY_EVERY_S,
                           clock=self.now),
                    name="monitoring-gateway-quality",
                )
            )  # fmt: skip

    def close_streams(self) -> None:
        """End every live stream to a browser, so the HTTP server can stop."""
        self.broadcaster.close()

    async def stop(self) -> None:
        """Flush what was counted since the last rollup, stop the tasks; idempotent."""
        self.broadcaster.close()
        tasks, self._tasks = self._tasks, []
        self._unsubscribe()
        self._unsubscribe = lambda: None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.delivery.stop()
        engine, self._engine = self._engine, None
        if engine is None:
            return
        if tasks:
            self._sample()
            self._queue_rollup(self._window_start(self.now()))
        while not self._writes.empty():
            await self._run(self._writes.get_nowait())
        self._store = self._alert_log = None
        await asyncio.to_thread(engine.dispose)

    # What the API and the CLI read.

    def replace_rules(self, rules: tuple[AlertRule, ...]) -> None:
        """Evaluate ``rules`` from now on (a reloaded config file). Alerts of rules that
        are gone clear at the next evaluation; windows longer than before fill up anew."""
        self.config = dataclasses.replace(self.config, rules=rules)
        longest = _traffic_window(rules)
        self.quality.keep_s = quality_keep_s(rules)
        self._coarse.keep_s = max(longest, self.config.edge_window.total_seconds()) + 60

    def watch_balancers(self, snapshots: Callable[[], Iterable[BalancerSnapshot]]) -> None:
        """Export the balancers' state (panic, breakers, ejections) on ``/metrics``."""
        self.registry.register(BalancerCollector(snapshots))

    def watch_events(self, edges: EventEdges) -> None:
        """Draw event publishers and subscribers (``edges()``) in the topology."""
        self._event_edges = edges

    def watch_gateway_quality(self, feed: QualityFeed) -> None:
        """Sum meter data quality per gateway from ``feed()`` (read every 5 s once
        started): the panel, ``/api/metering/quality`` and the ``gateway_quality`` rules."""
        self._quality_feed = feed

    def gateway_quality(self, window_s: float) -> list[GatewayQuality]:
        """Each gateway's data quality over the last ``window_s`` seconds."""
        return self.quality.summary(window_s=window_s, now=self.now())

    def quality_json(self, window_s: float | None = None) -> dict[str, Any]:
        """What ``/api/metering/quality`` answers (``gateway_quality.quality_json``)."""
        return quality_json(
            self.quality,
            rules=self.config.rules,
            alerts=self.alerts.active(),
            window_s=window_s,
            now=self.now(),
        )

    def scrape(self) -> bytes:
        return scrape(self.registry)

    def topology(self) -> Topology:
        """The node-relationship graph now."""
        return directory_graph(
            self.directory,
            self.health,
            unreachable=self.recorder.unreachable(),
            observed=self._observed_edges(),
            events=self._event_edges(),
        )

    def impact(self, node_id: str) -> Impact:
        return impact_of(self.topology(), node_id)

    def overview(self, topology: Topology | None = None) -> dict[str, Any]:
        """Services and nodes with health and live traffic, totals and alerts."""
        live, seconds = self._fine.deltas(self.config.live_window.total_seconds())
        found = overview_json(
            topology=topology or self.topology(),
            live=live,
            seconds=seconds,
            tallies=self.recorder.tallies(),
            in_flight=self.recorder.in_flight(),
            alerts=self.alerts.active(),
            recent=self.alerts.recent(20),
            started_at=self.recorder.started_at,
            now=self.now(),
        )
        # With who acknowledged and whether silenced, for the dashboard's alert actions.
        found["alerts"] = [alert_json(a, self.silences) for a in self.alerts.active()]
        return found

    def live(self) -> dict[str, Any]:
        """What the live stream sends each second: the overview and the topology."""
        topology = self.topology()
        return {"overview": self.overview(topology), "topology": topology.as_json()}

    def breakdown(self, *, service: str = "", node: str = "") -> dict[str, Any]:
        live, seconds = self._fine.deltas(self.config.live_window.total_seconds())
        return breakdown_json(
            live=live,
            seconds=seconds,
            tallies=self.recorder.tallies(),
            service=service,
            node=node,
        )

    def _cleared(self, alert: Alert) -> None:
        if not alert.active:
            self.silences.forget(alert.rule, alert.subject)

    def alerts_json(self) -> dict[str, Any]:
        """What ``/api/alerts`` answers (``alert_views.alerts_json``)."""
        return alerts_json(
            self.alerts, silences=self.silences, delivery=self.delivery, rules=self.config.rules
        )

    async def history(self, **query: Any) -> list[dict[str, Any]]:
        """Rollups from the database (``RollupStore.query``) with what was counted since
        the last one; empty without history."""
        store = self._store
        if store is None:
            return []
        self._sample()
        empty = Sample()
        unwritten = {}
        for key, sample in self._fine.latest.items():
            before = self._flushed.get(key)
            if before is not sample:
                unwritten[key] = sample - (before or empty)
        return await asyncio.to_thread(
            store.query, unwritten=unwritten, unwritten_at=self._flushed_window, **query
        )

    def evaluate(self) -> list[Alert]:
        """Evaluate every alert rule now; returns the alerts raised or cleared."""
        topology = self.topology()
        return self.alerts.evaluate(
            findings(
                self.config.rules,
                topology=topology,
                rates=self._rates_over,
                health=self.health,
                quality=self.gateway_quality,
            ),
            now=self.now(),
        )

    # Internals.

    def _state(self) -> tuple[list[TopologyNode], list[ServiceView]]:
        graph = self.topology()
        return graph.nodes, graph.services

    def _rates_over(self, seconds: float) -> dict[object, Rates]:
        window = self._fine if seconds <= _FINE_KEEP_S - 5 else self._coarse
        deltas, length = window.deltas(seconds)
        return rates_by(deltas, length, lambda k: k.service)

    def _observed_edges(self) -> list[ObservedEdge]:
        window = self.config.edge_window.total_seconds()
        deltas, seconds = self._coarse.deltas(window)
        if seconds < min(window, 60.0):
            deltas, seconds = self._fine.deltas(window)
        edge_of: Callable[[TallyKey], object] = lambda k: (k.caller, k.service, k.node_id)  # noqa: E731
        rates = rates_by(deltas, seconds, edge_of)
        totals: dict[tuple[str, str, str], int] = {}
        for key, tally in self.recorder.tallies().items():
            edge = (key.caller, key.service, key.node_id)
            totals[edge] = totals.get(edge, 0) + tally.count
        edges = []
        for edge in sorted(set(totals) | self._seeded_edges):
            caller, service, node = edge
            r = rates.get(edge)
            edges.append(
                ObservedEdge(
                    caller=caller,
                    service=service,
                    node=node,
                    qps=r.qps if r else 0.0,
                    error_share=r.error_share if r else 0.0,
                    requests=r.requests if r else 0,
                    total=totals.get(edge, 0),
                )
            )
        return edges

    def _sample(self) -> None:
        at = time.monotonic()
        snapshot = self.recorder.sample()
        self._fine.add(at, snapshot)
        if at - self._last_coarse >= _COARSE_EVERY_S:
            self._coarse.add(at, snapshot)
            self._last_coarse = at

    @staticmethod
    def _window_start(now: float) -> int:
        return int(now // _ROLLUP_S * _ROLLUP_S)

    async def _tick_forever(self) -> None:
        interval = self.config.evaluate_interval.total_seconds()
        last_compaction = time.monotonic()
        while True:
            now = self.now()
            await asyncio.sleep(interval - now % interval if interval >= 1 else interval)
            try:
                self._sample()
                self.evaluate()
                window = self._window_start(self.now())
                if window > self._flushed_window:
                    self._queue_rollup(window - _ROLLUP_S)
                    self._flushed_window = window
                if (
                    self._store is not None
                    and time.monotonic() - last_compaction > _COMPACT_EVERY_S
                ):
                    last_compaction = time.monotonic()
                    self._writes.put_nowait(functools.partial(self._store.compact, self.now()))
                if self.broadcaster.subscribers:
                    self.broadcaster.publish(
                        json.dumps(self.live(), ensure_ascii=False, separators=(",", ":"))
                    )
            except Exception:
                log.exception("monitoring tick failed")

    def _queue_rollup(self, window: int) -> None:
        store = self._store
        latest = self._fine.latest
        previous, self._flushed = self._flushed, dict(latest)
        if store is None:
            return
        empty = Sample()
        deltas = {}
        for key, sample in latest.items():
            before = previous.get(key)
            if before is not sample:
                deltas[key] = sample - (before or empty)
        if deltas:
            self._writes.put_nowait(lambda: store.write(window, deltas))

    async def _write_forever(self) -> None:
        while True:
            job = await self._writes.get()
            await self._run(job)

    async def _run(self, job: Callable[[], object]) -> None:
        try:
            await asyncio.to_thread(job)
        except Exception:
            log.exception("monitoring database write failed")

    async def _open_history(self) -> list[Alert]:
        """Open the database: migrate, seed edges seen lately, read alerts left active and
        the latest cleared ones."""
        engine = create_engine(self._db_url, pool_size=2)
        try:
            await asyncio.to_thread(MIGRATIONS.run, engine)
            store = RollupStore(
                engine,
                writer=self._writer,
                retention={
                    10: self.config.retention_10s,
                    60: self.config.retention_1m,
                    3600: self.config.retention_1h,
                },
            )
            alert_log = AlertLog(engine, writer=self._writer)
            keys = await asyncio.to_thread(store.recent_keys, self.now() - _SEED_EDGES_S)
            restored = await asyncio.to_thread(alert_log.unfinished)
            restored += reversed(await asyncio.to_thread(alert_log.recent))
        except BaseException:
            await asyncio.to_thread(engine.dispose)
            raise
        self._engine, self._store, self._alert_log = engine, store, alert_log
        for key in keys:
            self.recorder.admit_history(key)
            self._seeded_edges.add((key.caller, key.service, key.node_id))
        self.alerts.add_listener(
            lambda alert: self._writes.put_nowait(functools.partial(alert_log.record, alert))
        )
        return restored

    def _restore_alerts(self, restored: list[Alert]) -> None:
        self.alerts.restore(restored)
        # Nodes found down at start-up: down if the last run had raised that, else they
        # are taken to have left (nothing tells us they crashed).
        raised = {a.subject for a in restored if a.kind is AlertKind.NODE_DOWN and a.active}
        if GROUP_SUBJECT in raised:
            return  # a flood was down, its nodes unnamed: none of them is taken to have left
        for node in self.directory.nodes(include_down=True):
            if node.health is NodeHealth.DOWN and node.node_id not in raised:
                self.health.mark_left(node.node_id)


def _traffic_window(rules: Iterable[AlertRule]) -> float:
    """The longest window the live traffic samples must cover: gateway quality is summed
    from its own reports, so its hour-long window keeps no traffic samples."""
    return max(
        [r.window.total_seconds() for r in rules if r.kind is not AlertKind.GATEWAY_QUALITY] + [0.0]
    )
