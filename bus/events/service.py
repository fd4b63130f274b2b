"""``EventBus``: the bus's events side as one service — store, forwarder, replay, pruning.

Started by ``BusServer`` after the registry (it shares the database URL) and stopped
after the gRPC server, so no replay is cut off by the store closing under it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from powerbus.bus.events.forwarder import Forwarder, ForwarderSettings
from powerbus.bus.events.lag import SourceLag, SubscriberBook
from powerbus.bus.events.replay import EventReplayService
from powerbus.bus.events.store import Clock, EventStore
from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.lifecycle import Lifecycle
from powerbus.monitoring.alerts import Alert
from powerbus.monitoring.event_edges import EventEdge, EventRole
from powerbus.monitoring.rules import AlertKind

__all__ = ["EventBus", "EventBusConfig"]

log = logging.getLogger(__name__)

_PRUNE_EVERY = timedelta(minutes=1)
_LATEST_EVERY_S = 2.0


@dataclass(frozen=True, kw_only=True)
class EventBusConfig:
    """Where the event sockets listen and how long the store keeps events."""

    db: str
    events_in: HostPort = HostPort("127.0.0.1", 0)
    events_out: HostPort = HostPort("127.0.0.1", 0)
    retention: timedelta = timedelta(days=7)
    forwarder: ForwarderSettings = dataclasses.field(default_factory=ForwarderSettings)


class EventBus(Lifecycle):
    """The forwarder, its store, ``EventReplay`` and the pruning task.

    >>> # async with EventBus(config=EventBusConfig(db="sqlite://")) as events:
    >>> #     events.events_in, events.events_out   # bound addresses
    """

    def __init__(self, *, config: EventBusConfig, clock: Clock | None = None) -> None:
        self.config = config
        self._clock = clock
        self.store: EventStore | None = None
        self.forwarder: Forwarder | None = None
        self.replay: EventReplayService | None = None
        self._pruner: asyncio.Task[None] | None = None
        self._marks: asyncio.Task[None] | None = None
        self.latest: dict[str, int] = {}
        """Each source's latest stored sequence, refreshed every 2 s (what ``/metrics``
        reads: a scrape must not wait on the database)."""
        self.subscribers = SubscriberBook()
        """Position reports of subscribers (``ReportPosition``); kept across restarts of
        the service object, lost with the process (subscribers report again)."""
        self._alerts: Callable[[], list[Alert]] = list

    @property
    def events_in(self) -> HostPort:
        return self.forwarder.events_in if self.forwarder else self.config.events_in

    @property
    def events_out(self) -> HostPort:
        return self.forwarder.events_out if self.forwarder else self.config.events_out

    def watch_alerts(self, active: Callable[[], list[Alert]]) -> None:
        """Show each subscriber's active lag alert (``active()``: the alert book's active
        alerts) beside its lag in ``/api/events``."""
        self._alerts = active

    async def start(self) -> None:
        kwargs = {"clock": self._clock} if self._clock else {}
        store = self.store = await asyncio.to_thread(EventStore.open, self.config.db, **kwargs)
        self.replay = EventReplayService(
            store,
            endpoints=lambda: (str(self.events_in), str(self.events_out)),
            subscribers=self.subscribers,
        )
        self.forwarder = Forwarder(
            events_in=self.config.events_in,
            events_out=self.config.events_out,
            store=store,
            settings=self.config.forwarder,
        )
        await self.forwarder.start()
        self._pruner = asyncio.create_task(self._prune_forever(), name="powerbus-events-prune")
        self._marks = asyncio.create_task(self._latest_forever(), name="powerbus-events-latest")

    async def stop(self) -> None:
        """Stop forwarding, write what was captured, close the store; idempotent."""
        for task in (self._pruner, self._marks):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._pruner = self._marks = None
        forwarder, self.forwarder = self.forwarder, None
        if forwarder is not None:
            await forwarder.stop()
        store, self.store = self.store, None
        if store is not None:
            store.close()

    async def prune(self) -> int:
        """Delete what is older than the retention now; returns how many were deleted."""
        if self.store is None:
            return 0
        return await asyncio.to_thread(self.store.prune, self.config.retention)

    async def _prune_forever(self) -> None:
        interval = min(_PRUNE_EVERY, self.config.retention / 10).total_seconds()
        while True:
            await asyncio.sleep(interval)
            try:
                deleted = await self.prune()
            except Exception:  # the database: try again next round
                log.exception("events: pruning failed")
                continue
            if deleted:
                log.info(
                    "events: pruned %d envelopes older than %s", deleted, self.config.retention
                )

    def edges(self) -> list[EventEdge]:
        """Publishers (with their rates over the last 10 s) and reporting subscribers (with
        their rates and lag against the cached latest sequences) for the node graph."""
        out: list[EventEdge] = []
        if self.forwarder is not None:
            stats = self.forwarder.stats
            _total, rates = stats.rates()
            for source, seen in sorted(list(stats.sources.items())):
                out.append(
                    EventEdge(
                        node=source,
                        role=EventRole.PUBLISHES,
                        topics=(seen.last_topic,),
                        rate_per_s=rates.get(source, 0.0),
                        events=seen.events,
                    )
                )
        lag: dict[str, int] = {}
        for item in self.subscribers.lags(self.latest):
            lag[item.subscriber] = lag.get(item.subscriber, 0) + item.lag
        for entry in self.subscribers.subscribers():
            out.append(
                EventEdge(
                    node=entry.subscriber,
                    role=EventRole.SUBSCRIBES,
                    topics=entry.prefixes,
                    rate_per_s=entry.rate_per_s,
                    events=entry.delivered,
                    lag=lag.get(entry.subscriber, 0),
                )
            )
        return out

    async def refresh_latest(self) -> dict[str, int]:
        """Read each source's latest stored sequence now (and keep it for ``/metrics``)."""
        if self.store is None:
            return self.latest
        marks = await asyncio.to_thread(self.store.latest)
        self.latest = {m.source: m.latest_sequence for m in marks}
        return self.latest

    async def lags(self) -> list[SourceLag]:
        """Each reporting subscriber's lag per source, against the store's latest now."""
        return self.subscribers.lags(await self.refresh_latest())

    async def _latest_forever(self) -> None:
        while True:
            await asyncio.sleep(_LATEST_EVERY_S)
            try:
                await self.refresh_latest()
            except Exception:  # the database: the figures stay as they were until next round
                log.exception("events: reading the latest sequences failed")

    async def subscribers_json(self) -> list[dict[str, object]]:
        """The ``subscribers`` of ``/api/events``: name, prefixes, rate, lag per source, and
        the message of its active lag alert (``alert``, null when none)."""
        by_name: dict[str, list[SourceLag]] = {}
        for lag in await self.lags():
            by_name.setdefault(lag.subscriber, []).append(lag)
        alerts = {
            a.subject: a.message for a in self._alerts() if a.kind is AlertKind.SUBSCRIBER_LAG
        }
        return [
            {
                "subscriber": entry.subscriber,
                "prefixes": list(entry.prefixes),
                "delivered": entry.delivered,
                "rate_per_s": round(entry.rate_per_s, 1),
                "lag": sum(lag.lag for lag in by_name.get(entry.subscriber, [])),
                "sources": [
                    {
                        "source": lag.source,
                        "position": lag.position,
                        "latest": lag.latest,
                        "lag": lag.lag,
                    }
                    for lag in by_name.get(entry.subscriber, [])
                ],
                "alert": alerts.get(entry.subscriber),
            }
            for entry in self.subscribers.subscribers()
        ]

    def routes(self) -> list[BaseRoute]:
        """``/api/events``: publishers, subscriptions, subscribers with their lag, rates and
        the store's figures."""

        async def events(_request: Request) -> JSONResponse:
            body: dict[str, object] = {"running": self.forwarder is not None}
            if self.forwarder is not None:
                body.update(self.forwarder.stats.snapshot())
                body["events_in"] = str(self.forwarder.events_in)
                body["events_out"] = str(self.forwarder.events_out)
                body["retention_s"] = self.config.retention.total_seconds()
                body["subscribers"] = await self.subscribers_json()
            return JSONResponse(body)

        return [Route("/api/events", events)]
