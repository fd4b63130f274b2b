"""The event store, the outbox and the subscriber's ordering, in process: repeats stored
once, the contiguous mark, retention and replay after a week away (the clock injected)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa

from powerbus.bus.events import EventReplayService, EventStore, ReplayGone, StoredRow
from powerbus.bus.events.batch import MAX_RUN, EnvelopeBatch, Run, is_packed, pack
from powerbus.bus.events.migrations import MIGRATIONS
from powerbus.bus.events.stats import EventStats
from powerbus.bus.kernel.database import write_transaction
from powerbus.bus.kernel.errors import InvalidArgument, NotFound, PowerbusError
from powerbus.bus.kernel.event_runs import run_frame
from powerbus.events.v1 import events_pb2
from powerbus.load_balancer.status import StatusCode
from powerbus.nodes.sdk.events import Outbox, ReplayClient, Subscriber, SubscriberSettings, envelope

DAY = 86_400.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def rows(source: str, sequences: range | list[int]) -> list[StoredRow]:
    out = []
    for n in sequences:
        env = envelope(source, n, events_pb2.BillIssued(bill_id=f"B{n}"))
        out.append(StoredRow(source, n, env.topic, 0, env.SerializeToString()))
    return out


@pytest.fixture
def store(db_url: str):
    clock = Clock()
    s = EventStore.open(db_url, clock=clock)
    s.clock = clock  # type: ignore[attr-defined]
    yield s
    s.close()


def test_repeats_are_stored_once_and_the_mark_is_contiguous(store: EventStore) -> None:
    store.write(rows("b-1", [1, 2, 3, 5, 6]))
    assert store.latest(["b-1"])[0].latest_sequence == 3  # 4 is missing: the mark waits
    store.write(rows("b-1", [2, 3, 4]))  # a re-send with the missing one
    mark = store.latest()[0]
    assert (mark.latest_sequence, mark.earliest_sequence) == (6, 1)
    assert store.count() == 6
    replayed = [
        events_pb2.Envelope.FromString(raw).sequence
        for chunk in store.replay("b-1", 2)
        for raw in chunk
    ]
    assert replayed == [2, 3, 4, 5, 6]


def test_replay_names_what_is_wrong(store: EventStore) -> None:
    store.write(rows("b-1", range(1, 4)))
    with pytest.raises(InvalidArgument, match="source"):
        store.replay("", 1)
    with pytest.raises(InvalidArgument, match="to_sequence"):
        store.replay("b-1", 3, 2)
    with pytest.raises(NotFound, match="never stored"):
        store.replay("nobody", 1)


def test_retention_prunes_and_replay_after_a_week_away_still_works(store: EventStore) -> None:
    clock = store.clock  # type: ignore[attr-defined]
    store.write(rows("b-1", range(1, 101)))
    clock.now += 7 * DAY - 60  # a week away, less a minute: all still kept
    assert store.prune(timedelta(days=7)) == 0
    assert sum(len(c) for c in store.replay("b-1", 11)) == 90
    store.write(rows("b-1", range(101, 111)))
    clock.now += 120  # the first hundred are now older than the retention
    assert store.prune(timedelta(days=7)) == 100
    assert store.latest(["b-1"])[0].earliest_sequence == 101
    with pytest.raises(ReplayGone, match="pruned"):
        store.replay("b-1", 50)


def test_a_rolled_back_change_leaves_no_gap_in_the_numbering(tmp_path) -> None:
    box = Outbox.open(f"sqlite:///{tmp_path / 'n.db'}", source="b-1")
    try:
        with write_transaction(box.engine) as conn:
            box.add(conn, events_pb2.BillIssued(bill_id="B1"))
        with pytest.raises(RuntimeError), write_transaction(box.engine) as conn:
            box.add(conn, events_pb2.BillIssued(bill_id="lost"))
            raise RuntimeError("the change failed")
        with write_transaction(box.engine) as conn:
            env = box.add(conn, events_pb2.BillIssued(bill_id="B2"))
        assert env.sequence == 2
        assert [r.sequence for r in box.pending(after=0)] == [1, 2]
        assert box.acknowledge(1) == 1 and box.count() == 1
    finally:
        box.close()


async def serve(store: EventStore) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((EventReplayService(store).rpc_handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


async def test_a_subscriber_back_after_seven_days_replays_what_it_missed(tmp_path) -> None:
    clock = Clock()
    store = EventStore.open(f"sqlite:///{tmp_path / 'bus.db'}", clock=clock)
    server, address = await serve(store)
    try:
        store.write(rows("b-1", range(1, 501)))
        clock.now += 7 * DAY - 60
        await asyncio.to_thread(store.prune, timedelta(days=7))
        settings = SubscriberSettings(sync_interval=0.05)
        # Nothing is live: the subscriber resumes from its saved position by replay alone.
        async with Subscriber(
            events_out=["127.0.0.1:1"], bus=address, positions={"b-1": 200}, settings=settings
        ) as sub:
            got: list[events_pb2.Envelope] = []
            for _ in range(50):
                got += await sub.receive(timeout=0.05)
                if len(got) >= 300:
                    break
        assert [e.sequence for e in got] == list(range(201, 501))
        assert sub.replayed == 300 and sub.positions == {"b-1": 500}

        clock.now += 120
        await asyncio.to_thread(store.prune, timedelta(days=7))
        channel = grpc.aio.insecure_channel(address)
        try:
            client = ReplayClient(channel, timeout=5)
            with pytest.raises(PowerbusError) as gone:
                async for _env in client.replay("b-1", 1):
                    pass
            assert gone.value.status is StatusCode.OUT_OF_RANGE
            assert "pruned" in gone.value.message
            marks = await client.latest()
            assert marks["b-1"].earliest_sequence == 501
        finally:
            await channel.close()
    finally:
        await server.stop(None)
        store.close()


def test_the_store_has_a_history_of_its_own(db_url: str) -> None:
    store = EventStore.open(db_url)
    try:
        with store.engine.connect() as conn:
            version = conn.execute(sa.text("SELECT version_num FROM events_alembic_version"))
            assert version.scalar_one() == "e0002"
    finally:
        store.close()


def test_a_batch_of_interleaved_sources_advances_each_mark_and_its_stats(
    store: EventStore,
) -> None:
    mixed = [*rows("b-1", [1, 2]), *rows("m-1", [1]), *rows("b-1", [4, 3]), *rows("m-1", [2])]
    batch = EnvelopeBatch.of(mixed)
    runs = [(r.source, r.first, r.last) for r in batch.runs()]
    assert runs == [("b-1", 1, 4), ("m-1", 1, 2)]
    store.write(batch)
    assert {m.source: m.latest_sequence for m in store.latest()} == {"b-1": 4, "m-1": 2}

    stats = EventStats()
    stats.saw_many(batch.sources, batch.sequences, batch.topics, now=5.0)
    seen = {name: (s.events, s.last_sequence) for name, s in stats.sources.items()}
    assert seen == {"b-1": (4, 4), "m-1": (2, 2)} and stats.forwarded == 6
    stats.saw_many(["b-1"], [2], ["billing.bill.issued"], now=6.0)  # a late re-send
    assert stats.sources["b-1"].last_sequence == 4 and stats.sources["b-1"].events == 5


def test_re_sends_overlapping_stored_runs_in_part_store_only_what_is_missing(
    store: EventStore,
) -> None:
    made = {r.sequence: r for r in rows("b-1", range(1, 41))}

    def of(numbers: range | list[int]) -> list[StoredRow]:
        return [made[n] for n in numbers]

    store.write(of(range(1, 11)))
    store.write(of(range(21, 31)))
    # Overlaps both stored runs and fills the gap between them, then runs on past them.
    store.write(of(range(5, 36)))
    store.write(of([3, 3, 40, 38, 39]))  # repeats within a batch, out of order
    assert store.count() == 35 + 3
    assert store.latest(["b-1"])[0].latest_sequence == 35
    replayed = [e for chunk in store.replay("b-1", 1, 40) for e in chunk]
    assert replayed == [made[n].envelope for n in [*range(1, 36), 38, 39, 40]]
    with store.engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT first_sequence, last_sequence FROM events_runs ORDER BY 1")
        ).all()
    assert [tuple(r) for r in stored] == [(1, 10), (11, 20), (21, 30), (31, 35), (38, 40)]


def test_replay_starts_and_ends_inside_a_run(store: EventStore) -> None:
    store.write(rows("b-1", range(1, 2_501)))  # runs of MAX_RUN envelopes
    got = [
        events_pb2.Envelope.FromString(e).sequence
        for c in store.replay("b-1", 777, 2_222)
        for e in c
    ]
    assert got == list(range(777, 2_223))
    tail = [
        events_pb2.Envelope.FromString(e).sequence for c in store.replay("b-1", 2_499) for e in c
    ]
    assert tail == [2_499, 2_500]


def test_envelopes_stored_a_row_each_before_runs_are_migrated_and_read_back(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    MIGRATIONS.run(engine, revision="e0001")
    old = rows("b-1", [1, 2, 3, 5])
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO events_log VALUES (:source, :sequence, :topic, 0, 7, :envelope)"),
            [
                {
                    "source": r.source,
                    "sequence": r.sequence,
                    "topic": r.topic,
                    "envelope": r.envelope,
                }
                for r in old
            ],
        )
        conn.execute(sa.text("INSERT INTO events_sources VALUES ('b-1', 3, 1, 0)"))
    engine.dispose()
    store = EventStore.open(url)
    try:
        assert store.count() == 4
        assert [e for c in store.replay("b-1", 2, 5) for e in c] == [r.envelope for r in old[1:]]
        store.write(rows("b-1", range(1, 7)))  # 4 and 6 missing; 1-3 and 5 stored already
        assert store.count() == 6 and store.latest(["b-1"])[0].latest_sequence == 6
    finally:
        store.close()


def test_runs_that_came_whole_are_kept_once_beside_single_envelopes_and_joined(
    store: EventStore,
) -> None:
    made = {r.sequence: r for r in rows("b-1", range(1, 13))}
    batch = EnvelopeBatch.of([made[n] for n in (1, 2, 6)])

    def whole(first: int, last: int) -> Run:
        numbers = range(first, last + 1)
        blob = pack(made[n].envelope for n in numbers)
        return Run("b-1", first, last, made[first].topic, 0, blob)

    batch.add_run(whole(3, 5))
    batch.add_run(whole(5, 9))  # 5 came already in the run before, 6 on its own
    batch.add_run(whole(11, 12))
    assert len(batch) == 3 + 3 + 5 + 2
    assert [(r.first, r.last) for r in batch.runs()] == [(1, 9), (11, 12)]
    store.write(batch)
    assert store.count() == 11 and store.latest(["b-1"])[0].latest_sequence == 9
    replayed = [e for chunk in store.replay("b-1", 1, 12) for e in chunk]
    assert replayed == [made[n].envelope for n in [*range(1, 10), 11, 12]]


def test_full_length_runs_deep_in_a_history_are_found_by_their_bounded_length(
    store: EventStore,
) -> None:
    """The store finds the runs near a sequence by an index range of MAX_RUN below it
    (never scanning the source's history): runs of the full length, a re-send straddling
    two of them, the contiguous mark and a replay from inside one must all still hold."""
    for start in range(1, 5 * MAX_RUN, MAX_RUN):  # five full runs, then a gap
        store.write(rows("m-1", range(start, start + MAX_RUN)))
    store.write(rows("m-1", range(5 * MAX_RUN + 2, 5 * MAX_RUN + 4)))
    assert store.latest(["m-1"])[0].latest_sequence == 5 * MAX_RUN
    # a re-send from inside the fourth run to the gap and beyond fills only the gap
    store.write(rows("m-1", range(3 * MAX_RUN + 7, 5 * MAX_RUN + 6)))
    assert store.count() == 5 * MAX_RUN + 5
    assert store.latest(["m-1"])[0].latest_sequence == 5 * MAX_RUN + 5
    replayed = [b for chunk in store.replay("m-1", 4 * MAX_RUN - 1) for b in chunk]
    numbers = [events_pb2.Envelope.FromString(b).sequence for b in replayed]
    assert numbers == list(range(4 * MAX_RUN - 1, 5 * MAX_RUN + 6))


def test_runs_that_came_as_one_frame_are_stored_as_they_came_and_replayed_one_by_one(
    store: EventStore,
) -> None:
    """A run frame (the SDK's packing) is kept as its blob, never joined to a neighbour
    by concatenation (that would merge two envelopes into one); an overlapping re-send
    splits it; replay hands out each envelope on its own, without `following`."""
    made = {r.sequence: r for r in rows("b-1", range(1, 13))}

    def framed(first: int, last: int) -> Run:
        blob = run_frame([made[n].envelope for n in range(first, last + 1)])
        assert not is_packed(blob)
        return Run("b-1", first, last, made[first].topic, 0, blob)

    batch = EnvelopeBatch.of([made[n] for n in (1, 2)])
    batch.add_run(framed(3, 6))
    batch.add_run(framed(5, 9))  # 5 and 6 came already: the rest is split out of the frame
    batch.add_run(framed(10, 12))
    runs = batch.runs()
    assert [(r.first, r.last) for r in runs] == [(1, 2), (3, 6), (7, 9), (10, 12)]
    assert [is_packed(r.blob) for r in runs] == [True, False, True, False]
    store.write(batch)
    assert store.count() == 12 and store.latest(["b-1"])[0].latest_sequence == 12
    replayed = [e for chunk in store.replay("b-1", 4, 11) for e in chunk]
    envelopes = [events_pb2.Envelope.FromString(e) for e in replayed]
    assert [e.sequence for e in envelopes] == list(range(4, 12))
    assert not any(e.following for e in envelopes)
    assert envelopes == [events_pb2.Envelope.FromString(made[n].envelope) for n in range(4, 12)]
