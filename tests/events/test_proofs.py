"""The issue's proofs with real processes on 127.0.0.1: a subscriber, a publisher and the
bus each killed mid-stream; every event still arrives exactly once, in order per source."""

from __future__ import annotations

import signal
from pathlib import Path

from events_support import (
    assert_exactly_once_in_order,
    free_port,
    received,
    wait_exit,
    wait_for_count,
)

N = 3000


def test_subscriber_killed_and_restarted_mid_stream(bus_factory, actor, tmp_path: Path) -> None:
    bus = bus_factory()
    sub_db = tmp_path / "sub.db"
    sub_flags = {
        "bus": bus.grpc,
        "events_out": bus.state["events_out"],
        "db": f"sqlite:///{sub_db}",
        "name": "tickets",
    }
    first = actor("subscribe", "sub", **sub_flags)
    pub = actor(
        "publish",
        "pub",
        bus=bus.grpc,
        events_in=bus.state["events_in"],
        db=f"sqlite:///{tmp_path / 'pub.db'}",
        source="billing-1",
        count=N,
        rate=2000,
    )
    assert len(wait_for_count(sub_db, N // 4)) >= N // 4, "subscriber received too little"
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(10)
    first.expected_exit = True
    second = actor("subscribe", "sub", **sub_flags)
    wait_exit(pub)
    wait_for_count(sub_db, N)
    second.stop()
    assert_exactly_once_in_order(received(sub_db), {"billing-1": N})


def test_publisher_killed_right_after_committing(bus_factory, actor, tmp_path: Path) -> None:
    bus = bus_factory()
    sub_db = tmp_path / "sub.db"
    sub = actor(
        "subscribe",
        "sub",
        bus=bus.grpc,
        events_out=bus.state["events_out"],
        db=f"sqlite:///{sub_db}",
        name="tickets",
    )
    pub_flags = {
        "bus": bus.grpc,
        "events_in": bus.state["events_in"],
        "db": f"sqlite:///{tmp_path / 'pub.db'}",
        "source": "billing-1",
        "count": N,
    }
    killed = actor("publish", "pub", kill_after=N // 2, **pub_flags)
    assert killed.process.wait(60) == -signal.SIGKILL
    killed.expected_exit = True
    wait_exit(actor("publish", "pub", **pub_flags))
    wait_for_count(sub_db, N)
    sub.stop()
    assert_exactly_once_in_order(received(sub_db), {"billing-1": N})


def test_bus_killed_and_restarted_mid_stream(bus_factory, actor, tmp_path: Path) -> None:
    grpc, events_in, events_out = free_port(), free_port(), free_port()
    options = {
        "grpc": f"127.0.0.1:{grpc}",
        "db": f"sqlite:///{tmp_path / 'bus.db'}",
        "env": {
            "POWERBUS_EVENTS_IN": f"127.0.0.1:{events_in}",
            "POWERBUS_EVENTS_OUT": f"127.0.0.1:{events_out}",
        },
    }
    bus = bus_factory(**options)
    sub_db = tmp_path / "sub.db"
    sub = actor(
        "subscribe",
        "sub",
        bus=bus.grpc,
        events_out=bus.state["events_out"],
        db=f"sqlite:///{sub_db}",
        name="tickets",
    )
    pub = actor(
        "publish",
        "pub",
        bus=bus.grpc,
        events_in=bus.state["events_in"],
        db=f"sqlite:///{tmp_path / 'pub.db'}",
        source="billing-1",
        count=N,
        rate=1500,
    )
    assert len(wait_for_count(sub_db, N // 4)) >= N // 4
    bus.kill()
    bus.state_file.unlink()
    bus_factory(**options)
    wait_exit(pub)
    wait_for_count(sub_db, N)
    sub.stop()
    assert_exactly_once_in_order(received(sub_db), {"billing-1": N})
