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


def test_subscriber_killed_and_restarted_mid_stream(bus_factory, publisher, subscriber) -> None:
    bus = bus_factory()
    first = subscriber(bus)
    pub = publisher(bus, count=N, rate=2000)
    assert len(wait_for_count(first.db, N // 4)) >= N // 4, "subscriber received too little"
    first.handle.process.send_signal(signal.SIGKILL)
    first.handle.process.wait(10)
    first.handle.expected_exit = True
    second = subscriber(bus)  # the same name and database: resumes where the first stood
    wait_exit(pub)
    wait_for_count(second.db, N)
    second.handle.stop()
    assert_exactly_once_in_order(received(second.db), {"billing-1": N})


def test_publisher_killed_right_after_committing(bus_factory, publisher, subscriber) -> None:
    bus = bus_factory()
    sub = subscriber(bus)
    killed = publisher(bus, count=N, kill_after=N // 2)
    assert killed.process.wait(60) == -signal.SIGKILL
    killed.expected_exit = True
    wait_exit(publisher(bus, count=N))  # the same database: continues after the kill
    wait_for_count(sub.db, N)
    sub.handle.stop()
    assert_exactly_once_in_order(received(sub.db), {"billing-1": N})


def test_bus_killed_and_restarted_mid_stream(
    bus_factory, publisher, subscriber, tmp_path: Path
) -> None:
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
    sub = subscriber(bus)
    pub = publisher(bus, count=N, rate=1500)
    assert len(wait_for_count(sub.db, N // 4)) >= N // 4
    bus.kill()
    bus.state_file.unlink()
    bus_factory(**options)
    wait_exit(pub)
    wait_for_count(sub.db, N)
    sub.handle.stop()
    assert_exactly_once_in_order(received(sub.db), {"billing-1": N})
