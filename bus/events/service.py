"""``EventBus``: the bus's events side as one service — store, forwarder, replay, pruning.

Started by ``BusServer`` after the registry (it shares the database URL) and stopped
after the gRPC server, so no replay is cut off by the store closing under it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from dataclasses import dataclass
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from powerbus.bus.events.forwarder import Forwarder, ForwarderSettings
from powerbus.bus.events.replay import EventReplayService
from powerbus.bus.events.store import Clock, EventStore
from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.lifecycle import Lifecycle

__all__ = ["EventBus", "EventBusConfig"]

log = logging.getLogger(__name__)

_PRUNE_EVERY = timedelta(minutes=1)


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

    @property
    def events_in(self) -> HostPort:
        return self.forwarder.events_in if self.forwarder else self.config.events_in

    @property
    def events_out(self) -> HostPort:
        return self.forwarder.events_out if self.forwarder else self.config.events_out

    async def start(self) -> None:
        kwargs = {"clock": self._clock} if self._clock else {}
        store = self.store = await asyncio.to_thread(EventStore.open, self.config.db, **kwargs)
        self.replay = EventReplayService(store)
        self.forwarder = Forwarder(
            events_in=self.config.events_in,
            events_out=self.config.events_out,
            store=store,
            settings=self.config.forwarder,
        )
        await self.forwarder.start()
        self._pruner = asyncio.create_task(self._prune_forever(), name="powerbus-events-prune")

    async def stop(self) -> None:
        """Stop forwarding, write what was captured, close the store; idempotent."""
        pruner, self._pruner = self._pruner, None
        if pruner is not None:
            pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pruner
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

    def routes(self) -> list[BaseRoute]:
        """``/api/events``: publishers, subscriptions, rates and the store's figures."""

        async def events(_request: Request) -> JSONResponse:
            body: dict[str, object] = {"running": self.forwarder is not None}
            if self.forwarder is not None:
                body.update(self.forwarder.stats.snapshot())
                body["events_in"] = str(self.forwarder.events_in)
                body["events_out"] = str(self.forwarder.events_out)
                body["retention_s"] = self.config.retention.total_seconds()
            return JSONResponse(body)

        return [Route("/api/events", events)]
