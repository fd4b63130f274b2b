"""CRM's subscription to ``metering.end_device_event.reported``: power-off and tamper
events open fault-repair tickets (:meth:`TicketService.on_end_device_event`).

Delivery is at least once across restarts: positions are saved after the tickets are
written, so a crash in between replays a few events, and the ticket service is idempotent
by the event's mrid (and one open fault ticket per service point), so a replay opens
nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

import grpc
from sqlalchemy.engine import Engine

from powerbus.bus.kernel.database import write_transaction
from powerbus.bus.kernel.errors import PowerbusError
from powerbus.crm.v1 import crm_pb2
from powerbus.events.v1 import events_pb2
from powerbus.metering.v1 import metering_pb2
from powerbus.nodes.sdk.events import SqlPositions, Subscriber, open_event_tables

__all__ = ["TOPIC", "FaultFeed"]

log = logging.getLogger(__name__)

TOPIC = "metering.end_device_event.reported"

Handler = Callable[[metering_pb2.EndDeviceEvent], crm_pb2.ServiceTicket | None]


class FaultFeed:
    """Subscribes to :data:`TOPIC` on the bus and hands each event to ``handle`` (run in a
    worker thread); ``start()``/``stop()``."""

    def __init__(
        self,
        *,
        engine: Engine,
        name: str,
        bus: str,
        events_out: Sequence[str],
        handle: Handler,
        poll: float = 0.5,
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        self._channel = channel
        self._engine = engine
        self._positions = SqlPositions(engine, subscriber=name)
        self._bus = bus
        self._events_out = list(events_out)
        self._handle = handle
        self._poll = poll
        self._task: asyncio.Task[None] | None = None
        self.handled = 0
        """Events handed to the ticket service (repeats the subscriber dropped excluded)."""

    async def start(self) -> None:
        await asyncio.to_thread(open_event_tables, self._engine)
        positions = await asyncio.to_thread(self._positions.load)
        subscriber = Subscriber(
            events_out=self._events_out,
            bus=self._bus,
            prefixes=[TOPIC],
            positions=positions,
            channel=self._channel,
        )
        await subscriber.start()
        self._task = asyncio.create_task(self._run(subscriber), name="crm-fault-feed")

    async def stop(self) -> None:
        """Stop receiving; what was handled has its position saved. Idempotent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, subscriber: Subscriber) -> None:
        try:
            while True:
                batch = await subscriber.receive(timeout=self._poll)
                if batch:
                    await asyncio.to_thread(self._apply, batch, subscriber.positions)
        finally:
            await subscriber.stop()

    def _apply(self, batch: Sequence[events_pb2.Envelope], marks: dict[str, int]) -> None:
        for envelope in batch:
            reported = events_pb2.EndDeviceEventReported()
            if not envelope.payload.Unpack(reported):
                log.warning(
                    "event %s on %s is not EndDeviceEventReported",
                    envelope.event_id,
                    envelope.topic,
                )
                continue
            try:
                self._handle(reported.end_device_event)
            except PowerbusError as exc:
                # A bad event (unknown meter, missing fields) must not stop the feed.
                log.warning("event %s: no ticket: %s", envelope.event_id, exc)
            self.handled += 1
        with write_transaction(self._engine) as conn:
            self._positions.save(conn, marks)
