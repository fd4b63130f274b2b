"""pytest plugin for powerbus and for projects whose nodes run on it.

Fixtures start real processes on 127.0.0.1 with port 0, wait for their state files, and
stop whatever they started when the test ends (SIGTERM, SIGKILL after a bound; a clean stop
must exit 0). Each process writes ``<name>.out``/``<name>.err`` under the test's
``tmp_path/powerbus``; a failing test shows their last lines.

Load it with ``-p powerbus.nodes.testing.plugin`` or ``pytest_plugins = [...]`` in a
conftest, then::

    def test_echo(bus, node_factory):
        node = node_factory("echo", bus=bus)
        # call node.address directly, or bus.grpc through the router

Every test is also checked for leaks: child processes or non-daemon threads it started and
left running fail it (override the ``powerbus_leak_guard`` fixture to opt out).

A test that takes ``db_url`` gets a fresh database: a SQLite file, and in a second run a
PostgreSQL schema of its own when ``POWERBUS_TEST_PG_URL`` is set
(:mod:`powerbus.nodes.testing.databases`).
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from typing import Any, Protocol

import pytest

from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.supervisor import BusHandle, NodeHandle, ProcessGroup
from powerbus.nodes.testing.databases import PG_ENV, postgres_schema
from powerbus.nodes.testing.leaks import Snapshot

__all__ = [
    "BusFactory",
    "NodeFactory",
    "bus",
    "bus_factory",
    "db_url",
    "node_factory",
    "powerbus_leak_guard",
    "powerbus_processes",
]

_SNAPSHOT = pytest.StashKey[Snapshot]()
_GROUP = pytest.StashKey[ProcessGroup]()


class BusFactory(Protocol):
    def __call__(self, **options: Any) -> BusHandle: ...


class NodeFactory(Protocol):
    def __call__(
        self,
        kind: str,
        *,
        bus: BusHandle | HostPort | str,
        node_id: str | None = None,
        **options: Any,
    ) -> NodeHandle: ...


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that takes ``db_url`` on SQLite, and on PostgreSQL when configured."""
    if "db_url" in metafunc.fixturenames:
        kinds = [pytest.param("sqlite", id="sqlite")]
        if os.environ.get(PG_ENV):
            kinds.append(pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres))
        metafunc.parametrize("db_kind", kinds)


@pytest.fixture
def db_url(db_kind: str, tmp_path: Any) -> Iterator[str]:
    """A fresh, empty database URL (``db_kind``: ``sqlite`` or ``postgresql``)."""
    if db_kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'powerbus.db'}"
        return
    yield from postgres_schema(os.environ[PG_ENV])


@pytest.fixture
def powerbus_processes(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[ProcessGroup]:
    """Every process this test starts; stopped (newest first) when it ends."""
    directory = tmp_path / "powerbus"
    directory.mkdir(exist_ok=True)
    group = ProcessGroup(directory=directory)
    request.node.stash[_GROUP] = group
    yield group
    group.close()


@pytest.fixture
def bus_factory(powerbus_processes: ProcessGroup) -> BusFactory:
    """``bus_factory(**options)`` starts a ``powerbus bus``; options become flags
    (``lease_ttl="2s"`` → ``--lease-ttl 2s``). Returns once its state file is written."""
    return powerbus_processes.start_bus


@pytest.fixture
def bus(bus_factory: BusFactory) -> BusHandle:
    """One bus with default settings, its own SQLite database and free ports."""
    return bus_factory()


@pytest.fixture
def node_factory(powerbus_processes: ProcessGroup) -> NodeFactory:
    """``node_factory(kind, bus=bus, node_id=None, **options)`` starts ``powerbus node KIND``
    and returns once it registered; ``weight=50, zone="a"`` become flags."""
    return powerbus_processes.start_node


@pytest.fixture(autouse=True)
def powerbus_leak_guard(request: pytest.FixtureRequest) -> None:
    """Remembers the threads and child processes alive before the test; after its teardown
    anything new still running fails it."""
    request.node.stash[_SNAPSHOT] = Snapshot.take()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    # Checked after every fixture is finalized (the event loop's executor included), so
    # things that are merely shutting down are not reported.
    result = yield
    snapshot = item.stash.get(_SNAPSHOT, None)
    if snapshot is not None:
        problems = snapshot.leaks(grace=2.0)
        if problems:
            pytest.fail(f"{item.nodeid} leaked:\n  " + "\n  ".join(problems), pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    group = item.stash.get(_GROUP, None)
    if group is not None and report.failed:
        for handle in group.handles:
            report.sections.append((f"{handle.name} stderr", handle.stderr_tail()))
    return report
