"""What the event proofs share: actor processes (tests/events/actors.py) stopped with the
test, free ports, and the check that every event arrived exactly once, in order."""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from powerbus.bus.kernel.supervisor import BusHandle, ProcessGroup, ProcessHandle

ACTORS = Path(__file__).with_name("actors.py")
WAIT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


StartActor = Callable[..., ProcessHandle]


@pytest.fixture
def actor(powerbus_processes: ProcessGroup, tmp_path: Path) -> StartActor:
    """``actor("publish", name, bus=..., **flags)`` starts actors.py; stopped with the test."""
    numbers = iter(range(1, 1000))

    def start(command: str, label: str, **flags: object) -> ProcessHandle:
        args = [sys.executable, str(ACTORS), command]
        for key, value in flags.items():
            args += ["--" + key.replace("_", "-"), str(value)]
        handle = ProcessHandle(
            name=f"{label}-{next(numbers)}",
            args=args,
            directory=powerbus_processes.directory,
            state_file=tmp_path / "unused",
        )
        powerbus_processes.handles.append(handle)
        return handle

    return start


def bus_flags(bus: BusHandle) -> dict[str, str]:
    return {"bus": bus.grpc}


def received(db: Path) -> list[tuple[str, int, str]]:
    """(source, sequence, event_id) in the order the subscriber recorded them."""
    if not db.exists():
        return []
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as conn:
        try:
            return conn.execute(
                "SELECT source, sequence, event_id FROM received ORDER BY id"
            ).fetchall()
        except sqlite3.OperationalError:  # table not created yet
            return []


def wait_for_count(db: Path, count: int, *, timeout: float = WAIT) -> list[tuple[str, int, str]]:
    deadline = time.monotonic() + timeout
    rows = received(db)
    while len(rows) < count and time.monotonic() < deadline:
        time.sleep(0.1)
        rows = received(db)
    return rows


def wait_exit(handle: ProcessHandle, *, timeout: float = WAIT) -> int:
    """Wait for an actor that ends by itself; fail with its stderr if it fails."""
    try:
        code = handle.process.wait(timeout)
    except Exception:
        handle.kill()
        raise AssertionError(f"{handle.name} still running:\n{handle.stderr_tail()}") from None
    assert code == 0, f"{handle.name} exited {code}:\n{handle.stderr_tail()}"
    return code


def wait_subscribed(http: str, prefix: str, *, timeout: float = WAIT) -> None:
    """Wait until the bus's forwarder has passed a subscription to ``prefix`` upstream
    (``/api/events``): from then on a publisher that connects gets the prefix's messages.
    ZeroMQ's answer to the slow joiner, without guessing a sleep."""
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(f"http://{http}/api/events", timeout=10) as response:
            body = json.loads(response.read())
        if any(s["prefix"] == prefix for s in body.get("subscriptions", [])):
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"no subscription to {prefix!r} reached the bus: {body}")
        time.sleep(0.05)


def assert_exactly_once_in_order(rows: list[tuple[str, int, str]], counts: dict[str, int]) -> None:
    by_source: dict[str, list[int]] = {}
    for source, sequence, _event_id in rows:
        by_source.setdefault(source, []).append(sequence)
    for source, count in counts.items():
        got = by_source.get(source, [])
        assert len(got) == count, f"{source}: received {len(got)} events, expected {count}"
        assert got == list(range(1, count + 1)), f"{source}: not 1..{count} in order"
    assert len({r[2] for r in rows}) == len(rows), "an event_id was received twice"
