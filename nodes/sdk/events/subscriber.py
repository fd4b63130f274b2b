"""The subscriber: live envelopes from the bus's ``events_out``, in order per source,
each exactly once, gaps filled by replay.

Per source it keeps the last sequence delivered. A live envelope at that +1 is delivered;
at or below it, it is a repeat (a re-send, or the same event from another bus) and is
dropped; above it, it is held while ``EventReplay`` fills the gap. Every
``sync_interval`` it also asks where every source stands, which catches what was lost at
the tail (nothing newer came to reveal the gap) and sources never seen live. Envelopes
of other topics still move the position (sequences count every topic of a source); only
matching ones are delivered. Event ids of recent deliveries are remembered as a last
guard against a repeat under a different sequence.

The receive socket has a high-water mark: a subscriber that falls behind loses live
envelopes to ZeroMQ rather than slowing the forwarder or any publisher, and catches up
by replay.

>>> # async with Subscriber(events_out=[out], bus=grpc_addr, prefixes=["metering."],
>>> #                       positions=saved) as sub:
>>> #     while running:
>>> #         for env in await sub.receive(timeout=1.0): handle(env)
>>> #         with write_transaction(engine) as conn: store.save(conn, sub.positions)
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import grpc
import zmq
import zmq.asyncio

from powerbus.bus.kernel.errors import NotFound, PowerbusError
from powerbus.bus.kernel.event_runs import expand
from powerbus.events.v1 import events_pb2
from powerbus.load_balancer.status import StatusCode
from powerbus.nodes.sdk.events.replay_client import ReplayClient, reachable

__all__ = ["Subscriber", "SubscriberSettings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class SubscriberSettings:
    """Limits and timings (seconds)."""

    rcvhwm: int = 100_000
    """Live messages queued before ZeroMQ drops (replay fills the gap)."""
    sync_interval: float = 1.0
    """How often every source's latest sequence is checked."""
    retry_interval: float = 0.05
    """How soon a gap the store could not fill yet is tried again."""
    max_held: int = 200_000
    """Live envelopes held behind gaps at most; beyond, they are left to replay."""
    dedupe_window: int = 100_000
    """Recent event ids remembered."""
    report_interval: float = 2.0
    """How often a named subscriber reports its positions to the bus."""
    call_timeout: float = 5.0
    replay_timeout: float = 60.0


class Subscriber:
    """Envelopes whose topic starts with one of ``prefixes``; resumes from ``positions``.

    ``from_beginning``: a source with no position is replayed from its earliest stored
    envelope; otherwise delivery starts with the first live envelope seen. Without
    ``events_out`` the bus is asked where its event sockets are (``GetEndpoints``). With a
    ``name`` the positions are reported to the bus every ``report_interval`` (the bus
    shows and alerts on each subscriber's lag).
    """

    def __init__(
        self,
        *,
        bus: str,
        events_out: Sequence[str] = (),
        prefixes: Sequence[str] = ("",),
        positions: Mapping[str, int] | None = None,
        from_beginning: bool = True,
        name: str = "",
        settings: SubscriberSettings | None = None,
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        self._events_out = list(events_out)
        self._borrowed = channel
        """A channel to the bus the caller owns (a node's, with its certificate and token)."""
        self.name = name
        """Reported to the bus with the positions (its lag is shown under this name);
        empty: the subscriber does not report."""
        self._bus = bus
        self._prefixes = tuple(prefixes) or ("",)
        self._pos: dict[str, int] = dict(positions or {})
        self._from_beginning = from_beginning
        self._settings = settings or SubscriberSettings()
        self._held: dict[str, dict[int, events_pb2.Envelope]] = {}
        self._held_count = 0
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._sync_at = 0.0
        self._report_at = 0.0
        self._retry_at = 0.0
        self._context: zmq.asyncio.Context | None = None
        self._socket: zmq.asyncio.Socket | None = None
        self._drain: zmq.Socket[bytes] | None = None
        self._channel: grpc.aio.Channel | None = None
        self._client: ReplayClient | None = None
        self.live = 0
        """Envelopes delivered from the live stream."""
        self.replayed = 0
        """Envelopes delivered by replay."""
        self.repeats = 0
        """Envelopes dropped as already delivered."""

    @property
    def positions(self) -> dict[str, int]:
        """Per source, the last sequence delivered (or skipped as another topic)."""
        return dict(self._pos)

    async def start(self) -> None:
        if self._borrowed is None:
            self._channel = grpc.aio.insecure_channel(self._bus)
        channel = self._borrowed or self._channel
        assert channel is not None
        s = self._settings
        self._client = ReplayClient(
            channel, timeout=s.call_timeout, replay_timeout=s.replay_timeout
        )
        if not self._events_out:  # only the bus's gRPC address given: ask it
            try:
                _, events_out = await self._client.endpoints()
            except BaseException:
                await self.stop()
                raise
            self._events_out = [reachable(events_out, self._bus)]
        context = self._context = zmq.asyncio.Context()
        sock = self._socket = context.socket(zmq.SUB)
        sock.setsockopt(zmq.RCVHWM, s.rcvhwm)
        sock.setsockopt(zmq.LINGER, 0)
        for prefix in self._prefixes:
            sock.setsockopt(zmq.SUBSCRIBE, prefix.encode())
        for address in self._events_out:
            sock.connect(f"tcp://{address}")
        # A blocking twin of the same socket drains what is queued without an await each.
        self._drain = zmq.Socket.shadow(sock.underlying)
        self._sync_at = 0.0  # first receive() catches up at once

    async def __aenter__(self) -> Subscriber:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Close the socket and the channel; idempotent."""
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close(linger=0)
        self._drain = None
        context, self._context = self._context, None
        if context is not None:
            context.term()
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()

    async def receive(
        self, *, timeout: float = 1.0, limit: int = 10_000
    ) -> list[events_pb2.Envelope]:
        """The next envelopes in order (empty after ``timeout`` seconds with none)."""
        if self._socket is None or self._drain is None:
            raise PowerbusError("subscriber: receive() before start()")
        out: list[events_pb2.Envelope] = []
        now = time.monotonic()
        if now >= self._sync_at:
            self._sync_at = now + self._settings.sync_interval
            await self._sync(out)
        if self.name and now >= self._report_at:
            self._report_at = now + self._settings.report_interval
            await self.report()
        if self._held_count and now >= self._retry_at:
            await self._fill_held(out)
        wait_ms = 0 if out else int(timeout * 1000)
        if await self._socket.poll(wait_ms):
            parse = events_pb2.Envelope.FromString
            recv = self._drain.recv
            touched: set[str] = set()
            received = 0
            while received < limit:
                # As the forwarder's capture does: a frame, not copied, says itself whether
                # more follow (recv_multipart asks the socket, ~2 µs a frame). A message is
                # [topic, envelope, ...]: one or more envelope frames of that topic, each
                # maybe carrying the rest of its run (events.proto).
                try:
                    first = recv(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                received += 1  # a stray lone frame counts too: the loop stays bounded
                frame = first
                while frame.more:
                    frame = recv(copy=False)
                    received += 1
                    try:
                        env = parse(frame.bytes)
                    except Exception:  # protobuf's DecodeError: not one of ours
                        log.warning("subscriber: dropped an undecodable frame on %r", first.bytes)
                        continue
                    for one in expand(env) if env.following else (env,):
                        if not self._live(one, out):
                            touched.add(one.source)
            for source in touched:
                await self._fill(source, out)
        return out

    async def report(self) -> None:
        """Send the positions to the bus now (``receive`` does it every
        ``report_interval``); a failure is logged, the next report makes up for it."""
        if not self.name or self._client is None:
            return
        try:
            await self._client.report(
                self.name,
                prefixes=self._prefixes,
                positions=self._pos,
                delivered=self.live + self.replayed,
            )
        except PowerbusError as error:
            log.debug("subscriber: could not report positions (%s); will retry", error)

    def _live(self, env: events_pb2.Envelope, out: list[events_pb2.Envelope]) -> bool:
        """Deliver ``env`` if it is next; False if it was held behind a gap."""
        source, sequence = env.source, env.sequence
        pos = self._pos.get(source)
        if pos is None:
            pos = self._pos[source] = 0 if self._from_beginning else sequence - 1
        if sequence <= pos:
            self.repeats += 1
            return True
        if sequence == pos + 1:
            self.live += 1
            self._deliver(env, out)
            return True
        held = self._held.setdefault(source, {})
        if sequence not in held and self._held_count < self._settings.max_held:
            held[sequence] = env
            self._held_count += 1
        return False

    def _deliver(self, env: events_pb2.Envelope, out: list[events_pb2.Envelope]) -> None:
        self._pos[env.source] = env.sequence
        if not env.topic.startswith(self._prefixes):
            return
        if env.event_id:
            if env.event_id in self._seen:
                self.repeats += 1
                return
            self._seen[env.event_id] = None
            if len(self._seen) > self._settings.dedupe_window:
                self._seen.popitem(last=False)
        out.append(env)

    async def _sync(self, out: list[events_pb2.Envelope]) -> None:
        assert self._client is not None
        try:
            marks = await self._client.latest()
        except PowerbusError as error:
            log.debug("subscriber: bus unreachable (%s); will retry", error)
            return
        for source, mark in marks.items():
            pos = self._pos.get(source)
            if pos is None:
                if not self._from_beginning:
                    continue
                pos = self._pos[source] = 0
            if mark.latest_sequence > pos:
                await self._replay(source, pos + 1, mark.latest_sequence, out)

    async def _fill_held(self, out: list[events_pb2.Envelope]) -> None:
        for source in list(self._held):
            await self._fill(source, out)

    async def _fill(self, source: str, out: list[events_pb2.Envelope]) -> None:
        """Replay what lies between the position and the held envelopes, then release
        the held ones that became next."""
        held = self._held.get(source)
        if not held:
            return
        first_held = min(held)
        pos = self._pos[source]
        if first_held > pos + 1:
            await self._replay(source, pos + 1, first_held - 1, out)
        pos = self._pos[source]
        while held and (pos + 1 in held or min(held) <= pos):
            if pos + 1 in held:
                self.live += 1
                self._deliver(held.pop(pos + 1), out)
                self._held_count -= 1
            for stale in [s for s in held if s <= self._pos[source]]:
                del held[stale]
                self._held_count -= 1
            pos = self._pos[source]
        if not held:
            del self._held[source]
        else:
            self._retry_at = time.monotonic() + self._settings.retry_interval

    async def _replay(
        self, source: str, first: int, last: int, out: list[events_pb2.Envelope]
    ) -> None:
        assert self._client is not None
        try:
            async for env in self._client.replay(source, first, last):
                if env.sequence == self._pos[source] + 1:
                    self.replayed += 1
                    self._deliver(env, out)
        except NotFound:
            return  # not stored yet: the next round tries again
        except PowerbusError as error:
            if error.status is StatusCode.OUT_OF_RANGE:
                await self._skip_pruned(source, error)
                return
            log.warning("subscriber: replay of %s from %d failed: %s", source, first, error)

    async def _skip_pruned(self, source: str, error: PowerbusError) -> None:
        """Events older than the bus keeps are gone; carry on from the earliest kept."""
        assert self._client is not None
        marks = await self._client.latest([source])
        mark = marks.get(source)
        if mark is not None and mark.earliest_sequence - 1 > self._pos.get(source, 0):
            log.warning("subscriber: %s; skipping to %d", error, mark.earliest_sequence)
            self._pos[source] = mark.earliest_sequence - 1
