"""What the event proofs share: actor processes (tests/events/actors.py) stopped with the
test — any actor, or a publisher or subscriber on a bus — free ports, and the check that
every event arrived exactly once, in order."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sqlite3
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
from playwright.async_api import async_playwright

from powerbus.bus.kernel.supervisor import BusHandle, ProcessGroup, ProcessHandle
from powerbus.nodes.testing import eventually_sync

T = TypeVar("T")
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


@dataclass(frozen=True)
class SubscriberActor:
    """A subscribe actor and the SQLite file it records what it received in."""

    handle: ProcessHandle
    db: Path


class StartPublisher(Protocol):
    def __call__(
        self,
        bus: BusHandle,
        *,
        count: int,
        source: str = ...,
        db: str = ...,
        label: str = ...,
        ask_bus: bool = ...,
        **flags: object,
    ) -> ProcessHandle: ...


class StartSubscriber(Protocol):
    def __call__(
        self,
        bus: BusHandle,
        *,
        name: str = ...,
        label: str = ...,
        ask_bus: bool = ...,
        **flags: object,
    ) -> SubscriberActor: ...


@pytest.fixture
def publisher(actor: StartActor, tmp_path: Path) -> StartPublisher:
    """``publisher(bus, count=N)``: the publish actor for ``source`` (billing-1), its
    changes in ``tmp_path / db``; sends to the bus's ``events_in`` from its state file, or
    asks the bus where it is with ``ask_bus``. Other flags go to actors.py."""

    def start(
        bus: BusHandle,
        *,
        count: int,
        source: str = "billing-1",
        db: str = "pub.db",
        label: str = "pub",
        ask_bus: bool = False,
        **flags: object,
    ) -> ProcessHandle:
        if not ask_bus:
            flags.setdefault("events_in", bus.state["events_in"])
        return actor(
            "publish",
            label,
            bus=bus.grpc,
            db=f"sqlite:///{tmp_path / db}",
            source=source,
            count=count,
            **flags,
        )

    return start


@pytest.fixture
def subscriber(actor: StartActor, tmp_path: Path) -> StartSubscriber:
    """``subscriber(bus, name=...)``: the subscribe actor reporting as ``name`` (tickets),
    recording into ``tmp_path / f"{name}.db"`` (a restarted one with the same name resumes
    from there); ``ask_bus`` and other flags as for ``publisher``."""

    def start(
        bus: BusHandle,
        *,
        name: str = "tickets",
        label: str = "sub",
        ask_bus: bool = False,
        **flags: object,
    ) -> SubscriberActor:
        if not ask_bus:
            flags.setdefault("events_out", bus.state["events_out"])
        db = tmp_path / f"{name}.db"
        handle = actor("subscribe", label, bus=bus.grpc, db=f"sqlite:///{db}", name=name, **flags)
        return SubscriberActor(handle, db)

    return start


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


def get_json(http: str, path: str) -> Any:
    """The bus's HTTP API: ``path`` of the bus at ``http``, decoded."""
    with urllib.request.urlopen(f"http://{http}{path}", timeout=10) as response:
        return json.loads(response.read())


def wait_subscribed(http: str, prefix: str, *, timeout: float = WAIT) -> None:
    """Wait until the bus's forwarder has passed a subscription to ``prefix`` upstream
    (``/api/events``): from then on a publisher that connects gets the prefix's messages.
    ZeroMQ's answer to the slow joiner, without guessing a sleep."""
    deadline = time.monotonic() + timeout
    while True:
        body = get_json(http, "/api/events")
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


def until(check: Callable[[], T], *, seconds: float) -> T:
    """``check()``'s first truthy value within ``seconds`` (polled every 0.2 s), or its
    last falsy one, for the caller's assertion to show beside what it fetched."""
    try:
        return eventually_sync(check, timeout=seconds, interval=0.2)
    except TimeoutError:
        return check()


def panel_text(http: str, selector: str, *, timeout_s: float = 20.0) -> str:
    """The dashboard's events panel as Chromium shows it, once ``selector`` is there."""

    async def read() -> str:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"]
            )
            try:
                page = await browser.new_page()
                await page.goto(f"http://{http}/")
                await page.wait_for_selector(selector, timeout=timeout_s * 1000)
                return str(await page.inner_text("#events-panel"))
            finally:
                await browser.close()

    return asyncio.run(read())
