"""The forwarder: publishers' XSUB socket (``events_in``) to subscribers' XPUB socket
(``events_out``), with a copy of every envelope to the store.

Forwarding runs in libzmq's own proxy (``zmq.proxy_steerable``, C, GIL released), so the
live path costs no Python per event; the proxy's capture socket hands a copy of each
message to the store thread, which reads what it needs of each message (an envelope
frame, alone or carrying its run, parsed once; of a run sent a frame per envelope, its
first and last frame) and stores them in batches, as runs.
Two threads, each owned and joined on stop. Why threads rather than asyncio tasks: a
Python loop per event would cap the forwarder far below what the live path must carry.
Why one thread for parsing and writing rather than one each: SQLite's driver lets go of
the GIL around every row it inserts, and a parsing thread beside it, never waiting on
anything, then held the GIL for up to the switch interval (5 ms) each time; the two
together stored less than either alone (benchmarks/results/events.json). While a batch
is written, libzmq keeps what arrives in the capture pipe.

Back-pressure: a slow store fills the capture pipe (``store_hwm``), which then pauses
the proxy; publishers' PUB sockets drop at their own high-water mark rather than block,
and re-send from their outbox what the store lacks. A slow subscriber only fills its
own XPUB pipe (``subscriber_hwm``): ZeroMQ drops what it cannot take, never stalling
the proxy, and the subscriber fills the gap by replay.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from dataclasses import dataclass

import zmq

from powerbus.bus.events.batch import MAX_RUN, EnvelopeBatch, Run, pack
from powerbus.bus.events.stats import EventStats
from powerbus.bus.events.store import EventStore
from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.errors import Unavailable
from powerbus.events.v1 import events_pb2

__all__ = ["Forwarder", "ForwarderSettings"]

log = logging.getLogger(__name__)

_ids = itertools.count(1)
_POLL_MS = 50
_SAMPLE_S = 1.0
_START_TIMEOUT_S = 10.0
_JOIN_TIMEOUT_S = 15.0


@dataclass(frozen=True, kw_only=True)
class ForwarderSettings:
    """Socket and batching settings; the defaults suit one bus on one machine."""

    subscriber_hwm: int = 100_000
    """Messages queued per subscriber before ZeroMQ drops (it replays what it missed)."""
    publisher_hwm: int = 100_000
    """Messages queued per publisher connection on the XSUB side."""
    store_hwm: int = 1_000_000
    """Messages the capture pipe holds before the proxy pauses for the store."""
    batch: int = 10_000
    """Envelopes per store transaction at most."""
    flush_interval_s: float = 0.02
    """How long the store thread gathers a batch before writing it."""
    max_frame_bytes: int = 4 * 1024 * 1024
    """Largest frame (one envelope) a publisher may send, as gRPC's default message
    bound: libzmq drops the connection of a peer that sends more, before buffering it."""


class Forwarder:
    """XSUB→XPUB with persistence; ``start()`` binds, ``stop()`` joins every thread.

    >>> # fwd = Forwarder(events_in=HostPort("127.0.0.1", 0), events_out=..., store=store)
    >>> # await fwd.start(); fwd.events_in  -> the bound address
    """

    def __init__(
        self,
        *,
        events_in: HostPort,
        events_out: HostPort,
        store: EventStore,
        settings: ForwarderSettings | None = None,
    ) -> None:
        self.events_in = events_in
        self.events_out = events_out
        self.stats = EventStats()
        self._store = store
        self._settings = settings or ForwarderSettings()
        self._context: zmq.Context[zmq.Socket[bytes]] | None = None
        self._control: zmq.Socket[bytes] | None = None
        self._name = f"powerbus-events-{next(_ids)}"
        self._stopping = threading.Event()
        self._bound = threading.Event()
        self._bind_error: BaseException | None = None
        self._threads: list[threading.Thread] = []

    async def start(self) -> None:
        context = self._context = zmq.Context()
        control = self._control = context.socket(zmq.PAIR)
        control.bind(f"inproc://{self._name}-control")
        self._threads = [
            threading.Thread(target=self._proxy, name=f"{self._name}-proxy", daemon=True),
            threading.Thread(target=self._capture, name=f"{self._name}-store", daemon=True),
        ]
        self._threads[0].start()
        bound = await asyncio.to_thread(self._bound.wait, _START_TIMEOUT_S)
        if self._bind_error is not None or not bound:
            await self.stop()
            raise Unavailable(
                f"events: cannot listen on {self.events_in} / {self.events_out}: "
                f"{self._bind_error or 'timed out'}"
            )
        for thread in self._threads[1:]:
            thread.start()

    async def stop(self) -> None:
        """Stop forwarding, store what was captured, join the threads; idempotent."""
        control, self._control = self._control, None
        if control is None:
            return
        if self._threads[0].is_alive():
            control.send(b"TERMINATE")
        self._stopping.set()
        for thread in self._threads:
            if thread.ident is not None:
                await asyncio.to_thread(thread.join, _JOIN_TIMEOUT_S)
        control.close(linger=0)
        if self._context is not None:
            self._context.term()
            self._context = None

    def _proxy(self) -> None:
        assert self._context is not None
        ctx = self._context
        s = self._settings
        xsub, xpub = ctx.socket(zmq.XSUB), ctx.socket(zmq.XPUB)
        capture, control = ctx.socket(zmq.PUSH), ctx.socket(zmq.PAIR)
        try:
            xsub.setsockopt(zmq.RCVHWM, s.publisher_hwm)
            xsub.setsockopt(zmq.MAXMSGSIZE, s.max_frame_bytes)
            xpub.setsockopt(zmq.SNDHWM, s.subscriber_hwm)
            # Every (un)subscription upstream, so the stats can count subscribers.
            xpub.setsockopt(zmq.XPUB_VERBOSER, 1)
            capture.setsockopt(zmq.SNDHWM, s.store_hwm)
            for sock in (xsub, xpub, capture, control):
                sock.setsockopt(zmq.LINGER, 0)
            try:
                self.events_in = self._bind(xsub, self.events_in)
                self.events_out = self._bind(xpub, self.events_out)
            except zmq.ZMQError as error:
                self._bind_error = error
                return
            # Subscribe to everything upstream: publishers' PUB sockets filter by what their
            # peers subscribe to, and the store must get every envelope, subscribers or not.
            xsub.send(b"\x01")
            capture.bind(f"inproc://{self._name}-capture")
            control.connect(f"inproc://{self._name}-control")
            self._bound.set()
            zmq.proxy_steerable(xsub, xpub, capture, control)
        except zmq.ContextTerminated:  # pragma: no cover - only if stop() raced start()
            pass
        finally:
            self._bound.set()
            for sock in (xsub, xpub, capture, control):
                sock.close()

    @staticmethod
    def _bind(sock: zmq.Socket[bytes], address: HostPort) -> HostPort:
        if address.port == 0:
            port = sock.bind_to_random_port(f"tcp://{address.host}")
            return HostPort(address.host, port)
        sock.bind(f"tcp://{address}")
        return address

    def _capture(self) -> None:
        assert self._context is not None
        pull = self._context.socket(zmq.PULL)
        pull.setsockopt(zmq.LINGER, 0)
        pull.setsockopt(zmq.RCVHWM, self._settings.store_hwm)
        pull.connect(f"inproc://{self._name}-capture")
        batch = EnvelopeBatch()
        flush_at = sample_at = time.monotonic() + self._settings.flush_interval_s
        try:
            while True:
                stopping = self._stopping.is_set()
                if pull.poll(0 if stopping else _POLL_MS):
                    self._drain(pull, batch)
                elif stopping:
                    break  # the proxy is gone and its pipe is empty
                now = time.monotonic()
                if batch and (len(batch) >= self._settings.batch or now >= flush_at):
                    self._write(batch)
                    batch = EnvelopeBatch()
                if now >= flush_at:
                    flush_at = now + self._settings.flush_interval_s
                if now >= sample_at:
                    sample_at = now + _SAMPLE_S
                    self.stats.sample(now)
            if batch:
                self._write(batch)
        finally:
            pull.close()

    def _drain(self, pull: zmq.Socket[bytes], batch: EnvelopeBatch) -> None:
        # The hottest loop of the bus: one pass per message forwarded. Locals for every
        # attribute, only the header fields read, and no object kept per envelope.
        # recv_multipart asks the socket for RCVMORE after every frame, a getsockopt that
        # costs pyzmq ~2 µs; a frame received without copying carries that flag itself
        # (Frame.more). The topic frame's bytes are not needed: the topic is in the
        # envelope. A run (one source, consecutive sequences, one topic) comes as one
        # frame whose envelope carries the rest in `following`, or as a frame per
        # envelope; either way it is stored as it came, one blob, and of a frame per
        # envelope only the first and last are parsed.
        recv, again, noblock = pull.recv, zmq.Again, zmq.NOBLOCK
        stats = self.stats
        sources, sequences, topics = batch.sources, batch.sequences, batch.topics
        published, envelopes = batch.published_us, batch.envelopes
        start = len(sources)
        while len(batch) < self._settings.batch:
            try:
                first = recv(noblock, copy=False)
            except again:
                break
            if not first.more:  # a subscription travelling upstream (or a stray frame)
                stats.subscription(first.bytes)
                continue
            # The rest of a message is there once its first frame is.
            frame = recv(copy=False)
            if not frame.more:
                raw = frame.bytes
                envelope = self._parse(raw)
                if envelope is None:
                    continue
                if envelope.following:
                    self._add_run_frame(batch, envelope, raw)
                    continue
                sources.append(envelope.source)
                sequences.append(envelope.sequence)
                topics.append(envelope.topic)
                published.append(_published_us(envelope))
                envelopes.append(raw)
                continue
            frames = [frame]
            while frame.more:
                frame = recv(copy=False)
                frames.append(frame)
            self._add_run(batch, frames)
        stats.saw_many(sources[start:], sequences[start:], topics[start:], time.time())

    def _parse(self, raw: bytes) -> events_pb2.Envelope | None:
        """The envelope ``raw`` holds; None (counted as rejected) if it is not one."""
        try:
            envelope = events_pb2.Envelope.FromString(raw)
        except Exception:  # protobuf's DecodeError; anything unparsable is not stored
            self.stats.rejected += 1
            return None
        if not envelope.source or envelope.sequence == 0:
            self.stats.rejected += 1
            return None
        return envelope

    def _add_run_frame(self, batch: EnvelopeBatch, head: events_pb2.Envelope, raw: bytes) -> None:
        # Stored as it came: the store's blob may be a run frame (batch.is_packed).
        tail = head.following[-1]
        self._add_checked(batch, head, tail, len(head.following) + 1, raw)

    def _add_run(self, batch: EnvelopeBatch, frames: list[zmq.Frame]) -> None:
        head = self._parse(frames[0].bytes)
        tail = head and self._parse(frames[-1].bytes)
        if head is None or tail is None:
            return
        self._add_checked(batch, head, tail, len(frames), pack(f.buffer for f in frames))

    def _add_checked(
        self,
        batch: EnvelopeBatch,
        head: events_pb2.Envelope,
        tail: events_pb2.Envelope,
        count: int,
        blob: bytes,
    ) -> None:
        """Add a run of ``count`` envelopes, ``head`` to ``tail``, if they are one: the
        publisher vouches for the ones between (only the ends are parsed)."""
        source, first, topic, last = head.source, head.sequence, head.topic, tail.sequence
        problem = ""
        if tail.source != source:
            problem = f"sources {source!r} and {tail.source!r} in one message"
        elif tail.topic != topic:
            problem = f"topics {topic!r} and {tail.topic!r} in one message"
        elif last - first + 1 != count:
            problem = f"{count} envelopes numbered {first}..{last}"
        elif count > MAX_RUN:  # the store finds runs by their bounded length
            problem = f"{count} envelopes in one message, over {MAX_RUN}"
        if problem:
            self.stats.rejected += 1
            log.warning("events: dropped a message of source %r on %r: %s", source, topic, problem)
            return
        batch.add_run(Run(source, first, last, topic, _published_us(tail), blob))
        self.stats.saw_run(source, last, topic, count, time.time())

    def _write(self, rows: EnvelopeBatch) -> None:
        delay = 0.05
        while True:
            try:
                self._store.write(rows)
                self.stats.stored += len(rows)
                return
            except Exception:  # the database: keep the rows and try again
                self.stats.store_errors += 1
                log.exception("events: storing %d envelopes failed; retrying", len(rows))
                if self._stopping.is_set() and delay > 1.0:
                    log.error("events: giving up on %d envelopes at stop", len(rows))
                    return
                time.sleep(delay)
                delay = min(delay * 2, 2.0)


def _published_us(envelope: events_pb2.Envelope) -> int:
    stamp = envelope.time
    return stamp.seconds * 1_000_000 + stamp.nanos // 1000
