"""The wire seen by a plain ZeroMQ client, a slow subscriber beside a fast publisher, and
two buses sharing one database — real processes on 127.0.0.1."""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa
import zmq
from events_support import (
    assert_exactly_once_in_order,
    received,
    wait_exit,
    wait_for_count,
    wait_subscribed,
)

from powerbus.events.v1 import events_pb2


def test_a_plain_zmq_sub_decodes_frames_with_the_generated_message_alone(
    bus_factory, actor, tmp_path: Path
) -> None:
    bus = bus_factory()
    context = zmq.Context()
    sub = context.socket(zmq.SUB)
    try:
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"billing.")
        sub.connect(f"tcp://{bus.state['events_out']}")
        wait_subscribed(bus.http, "billing.")  # ZeroMQ's slow joiner
        pub = actor(
            "publish",
            "pub",
            bus=bus.grpc,
            events_in=bus.state["events_in"],
            db=f"sqlite:///{tmp_path / 'pub.db'}",
            source="billing-1",
            count=50,
        )
        wait_exit(pub)
        seen: dict[int, events_pb2.Envelope] = {}
        deadline = time.monotonic() + 10
        while len(seen) < 50 and time.monotonic() < deadline:
            if sub.poll(200):
                topic, raw = sub.recv_multipart()
                env = events_pb2.Envelope.FromString(raw)
                assert topic == env.topic.encode() == b"billing.bill.issued"
                seen[env.sequence] = env
    finally:
        sub.close()
        context.term()
    assert sorted(seen) == list(range(1, 51))
    bill = events_pb2.BillIssued()
    assert seen[7].payload.Unpack(bill) and bill.bill_id == "B7"
    assert seen[7].source == "billing-1" and len(seen[7].event_id) == 36


def test_a_slow_subscriber_does_not_slow_the_publisher_and_catches_up(
    bus_factory, actor, tmp_path: Path
) -> None:
    bus = bus_factory()
    n = 10_000
    common = {"bus": bus.grpc, "events_in": bus.state["events_in"], "count": n, "batch": 100}
    alone = actor(
        "publish", "alone", db=f"sqlite:///{tmp_path / 'a.db'}", source="fast-1", **common
    )
    wait_exit(alone)
    sub_db = tmp_path / "slow.db"
    slow = actor(
        "subscribe",
        "slow",
        bus=bus.grpc,
        events_out=bus.state["events_out"],
        db=f"sqlite:///{sub_db}",
        name="slow",
        pause=0.05,
        limit=500,
        rcvhwm=1000,
    )
    wait_for_count(sub_db, 1)  # it is connected and busy replaying fast-1
    beside = actor(
        "publish", "beside", db=f"sqlite:///{tmp_path / 'b.db'}", source="fast-2", **common
    )
    wait_exit(beside)
    t_alone = float(alone.stdout_path.read_text().split()[-1])
    t_beside = float(beside.stdout_path.read_text().split()[-1])
    # Ratio rather than seconds: the machine is shared and noisy.
    assert t_beside / t_alone < 2.0, f"publisher took {t_beside:.3f}s beside, {t_alone:.3f}s alone"
    # fast-1 was published before the subscriber started: it can only come by replay.
    wait_for_count(sub_db, 2 * n)
    slow.stop()
    assert_exactly_once_in_order(received(sub_db), {"fast-1": n, "fast-2": n})


def test_two_buses_on_one_database_each_deliver_everything_and_store_it_once(
    db_url: str, bus_factory, actor, tmp_path: Path
) -> None:
    # db_url first: its schema is set up before the buses start and dropped after they stop.
    a, b = bus_factory(db=db_url), bus_factory(db=db_url)
    n = 2000
    subs = {}
    for bus, name in ((a, "on-a"), (b, "on-b")):
        db = tmp_path / f"{name}.db"
        subs[name] = (
            db,
            actor(
                "subscribe",
                name,
                bus=bus.grpc,
                events_out=bus.state["events_out"],
                db=f"sqlite:///{db}",
                name=name,
            ),
        )
    pub = actor(
        "publish",
        "pub",
        bus=a.grpc,
        events_in=f"{a.state['events_in']},{b.state['events_in']}",
        db=f"sqlite:///{tmp_path / 'pub.db'}",
        source="billing-1",
        count=n,
        rate=4000,
    )
    wait_exit(pub)
    for db, handle in subs.values():
        wait_for_count(db, n)
        handle.stop()
        assert_exactly_once_in_order(received(db), {"billing-1": n})
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(sa.text("SELECT count(*) FROM events_log")).scalar_one()
    finally:
        engine.dispose()
    assert stored == n
