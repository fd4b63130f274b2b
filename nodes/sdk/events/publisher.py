"""The publisher: relays a source's outbox to the bus's ``events_in`` sockets.

Delivery guarantee, end to end: an event staged in a committed transaction reaches the
bus's store at least once, and the store keeps it once. The relay sends what is newer
than its cursor, then asks the bus (``GetLatestSequences``) how far its store has got
without a gap; rows up to there are deleted, and if the store stays behind what was sent
for ``resend_after`` (the bus restarted, a message was dropped, the connection was not up
yet) the cursor goes back and the rest is sent again. Subscribers drop the repeats.

Sending never blocks: a PUB socket drops at its high-water mark instead, and the
re-send covers it — so a slow bus or subscriber never stalls the node's own work.

>>> # box = Outbox(engine, source="billing-1")
>>> # async with Publisher(source="billing-1", outbox=box, bus="127.0.0.1:50051",
>>> #                      events_in=["127.0.0.1:5560"]) as pub:
>>> #     with write_transaction(engine) as conn:
>>> #         save_the_bill(conn); box.add(conn, events_pb2.BillIssued(...))
>>> #     pub.notify()          # optional: send now rather than at the next poll
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import grpc
import zmq
from google.protobuf import message

from powerbus.bus.kernel.database import write_transaction
from powerbus.bus.kernel.errors import DeadlineExceeded, PowerbusError, Unavailable
from powerbus.bus.kernel.event_runs import run_frame
from powerbus.events.v1 import events_pb2
from powerbus.nodes.sdk.events.outbox import Outbox, OutboxRow
from powerbus.nodes.sdk.events.replay_client import ReplayClient, reachable

__all__ = ["Publisher", "PublisherSettings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class PublisherSettings:
    """Timings and limits of the relay (seconds)."""

    poll_interval: float = 0.05
    """How often the outbox is read when nobody calls :meth:`Publisher.notify`."""
    ack_interval: float = 0.1
    """How often the bus is asked how far it has stored, while something is unconfirmed."""
    resend_after: float = 1.0
    """How long the store may stay behind what was sent before it is sent again."""
    batch: int = 10_000
    """Outbox rows read and sent per round."""
    message_envelopes: int = 256
    """Envelopes packed into one ZeroMQ message at most (of one topic, consecutive):
    what is queued goes out in few messages under load; one waiting goes alone."""
    message_bytes: int = 256 * 1024
    """Bytes of envelopes in one message at most (one larger envelope still goes alone)."""
    sndhwm: int = 100_000
    """Messages queued per bus connection before ZeroMQ drops (re-sent later)."""
    call_timeout: float = 5.0
    """Deadline of each call to the bus."""
    start_timeout: float = 30.0
    """How long :meth:`Publisher.start` waits for the bus to tell where the source stands."""


class Publisher:
    """One source's relay from its outbox to the bus; ``start()``/``stop()`` or ``async with``."""

    def __init__(
        self,
        *,
        source: str,
        outbox: Outbox,
        bus: str,
        events_in: Sequence[str] = (),
        settings: PublisherSettings | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        if outbox.source != source:
            raise PowerbusError(f"outbox is {outbox.source!r}'s, not {source!r}'s")
        self.source = source
        self.outbox = outbox
        self._bus = bus
        self._credentials = credentials  # TLS to the bus; None: plaintext
        self._events_in = list(events_in)
        self._settings = settings or PublisherSettings()
        self._borrowed = channel
        """A channel to the bus the caller owns (a node's, with its certificate and token)."""
        self._channel: grpc.aio.Channel | None = None
        self._client: ReplayClient | None = None
        self._context: zmq.Context[zmq.Socket[bytes]] | None = None
        self._socket: zmq.Socket[bytes] | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cursor = 0  # sent up to here
        self._stored = 0  # the bus has stored up to here, no gap
        self._progress_at = 0.0
        self._stored_changed = asyncio.Condition()
        self.sent = 0
        """Envelopes handed to ZeroMQ, re-sends included."""

    @property
    def stored(self) -> int:
        """Up to which sequence the bus has confirmed storing this source."""
        return self._stored

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self._borrowed is None:
            self._channel = (
                grpc.aio.insecure_channel(self._bus)
                if self._credentials is None
                else grpc.aio.secure_channel(self._bus, self._credentials)
            )
        channel = self._borrowed or self._channel
        assert channel is not None
        self._client = ReplayClient(channel, timeout=self._settings.call_timeout)
        try:
            if not self._events_in:  # only the bus's gRPC address given: ask it
                events_in, _ = await self._client.endpoints()
                self._events_in = [reachable(events_in, self._bus)]
            stored = await self._where_the_bus_stands()
            await asyncio.to_thread(self.outbox.continue_after, stored)
            await asyncio.to_thread(self.outbox.acknowledge, stored)
        except BaseException:
            await self.stop()
            raise
        self._cursor = self._stored = stored
        self._progress_at = time.monotonic()
        context = self._context = zmq.Context()
        sock = self._socket = context.socket(zmq.PUB)
        sock.setsockopt(zmq.SNDHWM, self._settings.sndhwm)
        sock.setsockopt(zmq.LINGER, 1000)  # a bounded wait for the last sends at stop
        for address in self._events_in:
            sock.connect(f"tcp://{address}")
        self._task = asyncio.create_task(self._relay(), name=f"powerbus-publisher-{self.source}")

    async def __aenter__(self) -> Publisher:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop relaying (staged rows stay in the outbox for next time); idempotent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()
        context, self._context = self._context, None
        if context is not None:
            await asyncio.to_thread(context.term)
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()

    def notify(self) -> None:
        """Something was committed to the outbox: send it now. Safe from any thread."""
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    async def publish(
        self,
        payload: message.Message,
        *,
        topic: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> events_pb2.Envelope:
        """Stage ``payload`` in a transaction of its own and send it (for events that
        announce no change of this node's database)."""

        def stage() -> events_pb2.Envelope:
            with write_transaction(self.outbox.engine) as conn:
                return self.outbox.add(conn, payload, topic=topic, headers=headers)

        env = await asyncio.to_thread(stage)
        self.notify()
        return env

    async def flush(self, timeout: float) -> None:
        """Wait until the bus has stored everything staged so far."""
        target = await asyncio.to_thread(self.outbox.last_sequence)

        async def reached() -> None:
            async with self._stored_changed:
                await self._stored_changed.wait_for(lambda: self._stored >= target)

        try:
            await asyncio.wait_for(reached(), timeout)
        except (TimeoutError, asyncio.TimeoutError):
            raise DeadlineExceeded(
                f"publisher {self.source}: bus stored up to {self._stored}, "
                f"not {target}, within {timeout:.1f}s"
            ) from None

    async def _where_the_bus_stands(self) -> int:
        assert self._client is not None
        deadline = time.monotonic() + self._settings.start_timeout
        delay = 0.05
        while True:
            try:
                marks = await self._client.latest([self.source])
            except PowerbusError as error:
                if not error.retriable or time.monotonic() + delay > deadline:
                    raise Unavailable(
                        f"publisher {self.source}: bus {self._bus} did not say where the "
                        f"source stands: {error}"
                    ) from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            mark = marks.get(self.source)
            return int(mark.latest_sequence) if mark else 0

    async def _relay(self) -> None:
        s = self._settings
        ack_at = 0.0
        while True:
            # asyncio's, which is not the builtin TimeoutError before Python 3.11.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), s.poll_interval)
            self._wake.clear()
            try:
                await self._send_pending()
                now = time.monotonic()
                if self._stored < self._cursor and now >= ack_at:
                    ack_at = now + s.ack_interval
                    await self._check_stored(now)
            except Exception:  # the node's database: the outbox keeps everything; retry
                log.exception("publisher %s: relaying the outbox failed; retrying", self.source)
                await asyncio.sleep(s.resend_after)

    async def _send_pending(self) -> None:
        sock = self._socket
        assert sock is not None
        rows = await asyncio.to_thread(
            self.outbox.pending, after=self._cursor, limit=self._settings.batch
        )
        for frames in _messages(rows, self._settings):
            # PUB never blocks: at the high-water mark ZeroMQ drops, the re-send covers it.
            sock.send_multipart(frames, copy=False)
        if rows:
            self._cursor = rows[-1].sequence
            self.sent += len(rows)
            if len(rows) == self._settings.batch:
                self._wake.set()  # more waiting: next round at once

    async def _check_stored(self, now: float) -> None:
        assert self._client is not None
        try:
            marks = await self._client.latest([self.source])
        except PowerbusError as error:
            log.debug("publisher %s: bus unreachable (%s); will retry", self.source, error)
            marks = None
        if marks is not None:
            mark = marks.get(self.source)
            stored = int(mark.latest_sequence) if mark else 0
            if stored > self._stored:
                await asyncio.to_thread(self.outbox.acknowledge, stored)
                async with self._stored_changed:
                    self._stored = stored
                    self._stored_changed.notify_all()
                self._progress_at = now
        if self._stored >= self._cursor:
            self._progress_at = now
        elif now - self._progress_at >= self._settings.resend_after:
            log.info(
                "publisher %s: bus stored up to %d of %d sent; sending the rest again",
                self.source,
                self._stored,
                self._cursor,
            )
            self._cursor = self._stored
            self._progress_at = now
            self._wake.set()


def _messages(rows: list[OutboxRow], settings: PublisherSettings) -> Iterator[list[bytes]]:
    """``rows`` as ZeroMQ messages ``[topic, frame]``: a lone envelope, or a run of
    consecutive sequences of one topic within the settings' bounds as one frame
    (:func:`~powerbus.bus.kernel.event_runs.run_frame`), so a burst costs the publisher,
    the bus and each subscriber one frame per run rather than per envelope."""
    run: list[bytes] = []
    topic = ""
    size = previous = 0
    for row in rows:
        if (
            not run
            or row.sequence != previous + 1
            or len(run) >= settings.message_envelopes
            or size + len(row.envelope) > settings.message_bytes
            or row.topic != topic
        ):
            if run:
                yield [topic.encode(), run_frame(run) if len(run) > 1 else run[0]]
            run, size, topic = [], 0, row.topic
        run.append(row.envelope)
        size += len(row.envelope)
        previous = row.sequence
    if run:
        yield [topic.encode(), run_frame(run) if len(run) > 1 else run[0]]
