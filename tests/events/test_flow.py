"""The wire seen by a plain ZeroMQ client, a frozen subscriber beside a publisher, and
two buses sharing one database, stray frames on the publishers' socket — real processes
on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import grpc
import sqlalchemy as sa
import zmq
from events_support import (
    assert_exactly_once_in_order,
    get_json,
    received,
    until,
    wait_exit,
    wait_for_count,
    wait_subscribed,
)

from powerbus.bus.kernel.event_runs import run_frame
from powerbus.events.v1 import events_pb2
from powerbus.nodes.sdk.events import ReplayClient, envelope


def test_a_plain_zmq_sub_decodes_runs_of_envelopes_with_the_generated_message(
    bus_factory, publisher
) -> None:
    """What events.proto tells a plain SUB to do, and nothing of powerbus: decode each
    frame as an Envelope, then take its `following`."""
    bus = bus_factory()
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    try:
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"billing.")
        sub.connect(f"tcp://{bus.state['events_out']}")
        wait_subscribed(bus.http, "billing.")  # ZeroMQ's slow joiner
        # Committed 25 at a time: the publisher sends each 25 as one run frame.
        wait_exit(publisher(bus, count=50, batch=25))
        seen: dict[int, events_pb2.Envelope] = {}
        sizes: list[int] = []
        deadline = time.monotonic() + 10
        while len(seen) < 50 and time.monotonic() < deadline:
            if sub.poll(200):
                topic, *raws = sub.recv_multipart()
                for raw in raws:
                    head = events_pb2.Envelope.FromString(raw)
                    sizes.append(1 + len(head.following))
                    for env in [head, *head.following]:
                        assert topic == env.topic.encode() == b"billing.bill.issued"
                        seen[env.sequence] = env
    finally:
        sub.close()
        context.term()
    assert sorted(seen) == list(range(1, 51))
    assert max(sizes) > 1, f"every frame held one envelope: {sizes}"
    bill = events_pb2.BillIssued()
    assert seen[7].payload.Unpack(bill) and bill.bill_id == "B7"
    assert seen[7].source == "billing-1" and len(seen[7].event_id) == 36


def test_a_stalled_subscriber_does_not_hold_up_the_publisher_and_catches_up(
    bus_factory, publisher, subscriber
) -> None:
    """The subscriber is frozen (SIGSTOP) while a publisher sends: the publisher still
    finishes and the bus stores everything, so nothing on the path waits for a
    subscriber's pace. Thawed, the subscriber gets every event by replay. A freeze rather
    than a ratio of timings, which a shared machine makes noisy."""
    bus = bus_factory()
    n = 10_000
    wait_exit(publisher(bus, count=n, batch=100, source="fast-1", db="a.db", label="before"))
    slow = subscriber(bus, name="slow", label="slow", pause=0.05, limit=500, rcvhwm=1000)
    wait_for_count(slow.db, 1)  # it is connected and busy replaying fast-1
    os.kill(slow.handle.process.pid, signal.SIGSTOP)
    try:
        frozen = len(received(slow.db))
        wait_exit(publisher(bus, count=n, batch=100, source="fast-2", db="b.db", label="beside"))
        assert until(lambda: stored_latest(bus.grpc, "fast-2") == n, seconds=30)
        assert len(received(slow.db)) == frozen
    finally:
        os.kill(slow.handle.process.pid, signal.SIGCONT)
    # fast-1 was published before the subscriber started: it can only come by replay.
    wait_for_count(slow.db, 2 * n)
    slow.handle.stop()
    assert_exactly_once_in_order(received(slow.db), {"fast-1": n, "fast-2": n})


def stored_latest(grpc_address: str, source: str) -> int:
    """The last sequence of ``source`` the bus has stored (0 for none)."""

    async def ask() -> int:
        async with grpc.aio.insecure_channel(grpc_address) as channel:
            mark = (await ReplayClient(channel).latest([source])).get(source)
            return int(mark.latest_sequence) if mark else 0

    return asyncio.run(ask())


def test_two_buses_on_one_database_each_deliver_everything_and_store_it_once(
    db_url: str, bus_factory, publisher, subscriber
) -> None:
    # db_url first: its schema is set up before the buses start and dropped after they stop.
    a, b = bus_factory(db=db_url), bus_factory(db=db_url)
    n = 2000
    subs = [subscriber(bus, name=name, label=name) for bus, name in ((a, "on-a"), (b, "on-b"))]
    both = f"{a.state['events_in']},{b.state['events_in']}"
    wait_exit(publisher(a, count=n, rate=4000, events_in=both))
    for sub in subs:
        wait_for_count(sub.db, n)
        sub.handle.stop()
        assert_exactly_once_in_order(received(sub.db), {"billing-1": n})
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(
                sa.text("SELECT sum(last_sequence - first_sequence + 1) FROM events_runs")
            ).scalar_one()
    finally:
        engine.dispose()
    assert stored == n


def rejected(http: str) -> int:
    return int(get_json(http, "/api/events")["rejected"])


def test_stray_frames_from_a_plain_pub_do_not_misalign_what_the_bus_stores(bus_factory) -> None:
    """The capture reads each frame's own 'more' flag, not recv_multipart: a lone frame
    and a message of three frames (not envelopes) are passed over, messages of several
    envelopes that are no run (two sources, a gap) are dropped and counted as rejected,
    and the envelopes after them, one or a run to a message, are still read and stored;
    a frame over the bus's bound is refused before it is buffered; a run frame whose
    ends are two sources is dropped like a message of two."""
    bus = bus_factory()
    frames = {
        n: (
            b"billing.bill.issued",
            envelope("raw-1", n, events_pb2.BillIssued()).SerializeToString(),
        )
        for n in (1, 2, 3)
    }
    made = {n: frames[n][1] for n in frames}
    made |= {
        n: envelope("raw-1", n, events_pb2.BillIssued()).SerializeToString() for n in (4, 5, 7)
    }
    context = zmq.Context()
    pub = context.socket(zmq.PUB)

    async def replayed(sequence: int) -> int:
        async with grpc.aio.insecure_channel(bus.grpc) as channel:
            async for env in ReplayClient(channel).replay("raw-1", sequence, sequence):
                return env.ByteSize()
        return 0

    try:
        pub.setsockopt(zmq.LINGER, 1000)
        pub.connect(f"tcp://{bus.state['events_in']}")
        # Until the forwarder's subscription reaches this PUB it drops: send 1 until stored.
        stored = until(
            lambda: pub.send_multipart(frames[1]) or stored_latest(bus.grpc, "raw-1"), seconds=20
        )
        assert stored == 1
        pub.send(b"stray")  # one frame
        pub.send_multipart([b"billing.bill.issued", b"\xff\xff", b"extra"])  # three frames
        pub.send(b"stray")  # five frames in all: pairing them blindly would now misalign
        # Messages of several envelopes that are no run: the bus drops them whole, logs
        # why, and goes on (5 and 6 of two sources; 5..7 with 6 left out).
        other = envelope("raw-2", 6, events_pb2.BillIssued()).SerializeToString()
        pub.send_multipart([b"billing.bill.issued", made[5], other])
        pub.send_multipart([b"billing.bill.issued", made[5], made[7]])
        pub.send_multipart(frames[2])
        pub.send_multipart([b"billing.bill.issued", made[3], made[4]])  # a run of two
        assert until(lambda: stored_latest(bus.grpc, "raw-1") == 4, seconds=20)
        assert until(lambda: rejected(bus.http) >= 3, seconds=5)
        # An envelope over the bus's frame bound (4 MiB) never reaches the store: libzmq
        # drops the connection; the PUB reconnects and envelope 5 is sent again, small.
        huge = envelope("raw-1", 5, events_pb2.BillIssued(bill_id="x" * (5 << 20)))
        pub.send_multipart([b"billing.bill.issued", huge.SerializeToString()])
        assert until(
            lambda: (
                pub.send_multipart([b"billing.bill.issued", made[5]])
                or stored_latest(bus.grpc, "raw-1") == 5
            ),
            seconds=20,
        )
        assert asyncio.run(replayed(5)) == len(made[5])
        # A run in one frame (the SDK's packing) is held to the same rules: one of two
        # sources is dropped; 6..7 in one frame is stored and replayed one by one.
        made[6] = envelope("raw-1", 6, events_pb2.BillIssued()).SerializeToString()
        before = rejected(bus.http)
        pub.send_multipart([b"billing.bill.issued", run_frame([made[6], other])])
        pub.send_multipart([b"billing.bill.issued", run_frame([made[6], made[7]])])
        assert until(lambda: stored_latest(bus.grpc, "raw-1") == 7, seconds=20)
        assert rejected(bus.http) == before + 1
        assert asyncio.run(replayed(6)) == len(made[6])
        assert asyncio.run(replayed(7)) == len(made[7])
    finally:
        pub.close()
        context.term()
