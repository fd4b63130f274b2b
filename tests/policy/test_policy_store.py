"""The policy store and watcher on a shared database (SQLite, and PostgreSQL when
POWERBUS_TEST_PG_URL is set): a change through one watcher reaches another within its
poll interval, in revision order, and bad changes are refused before anything is stored."""

from __future__ import annotations

from datetime import timedelta

import pytest

from powerbus.bus.kernel.errors import InvalidArgument
from powerbus.bus.policy import PolicyBook, PolicyWatcher
from powerbus.bus.registry import Registry
from powerbus.nodes.testing import eventually

ECHO = "powerbus.echo.v1.Echo"


@pytest.fixture
async def registries(db_url):
    started = []
    for _ in range(2):
        registry = Registry(
            db_url=db_url, lease_ttl=timedelta(seconds=10), sweep_interval=timedelta(seconds=1)
        )
        await registry.start()
        started.append(registry)
    yield started
    for registry in started:
        await registry.stop()


async def test_a_change_reaches_every_watcher(registries):
    first_book, second_book = PolicyBook(), PolicyBook()
    heard: list[set[str]] = []
    often = timedelta(seconds=0.05)
    async with (
        PolicyWatcher(engine=registries[0].engine, book=first_book, interval=often) as first,
        PolicyWatcher(engine=registries[1].engine, book=second_book, interval=often) as second,
    ):
        second.add_listener(heard.append)
        stored = await first.set(ECHO, set_={"picker": "random"}, by="ops")
        assert (stored.revision, dict(stored.settings), stored.updated_by) == (
            1,
            {"picker": "random"},
            "ops",
        )
        # The writer has it at once; the other within a poll or two.
        assert first_book.policy(ECHO).balancer.picker.value == "random"
        await eventually(
            lambda: second_book.policy(ECHO).balancer.picker.value == "random",
            timeout=5,
            what="the second watcher to see the change",
        )
        assert heard == [{ECHO}]

        await second.set(ECHO, set_={"retry.max_attempts": "5"}, unset=("picker",))
        await first.set("*", set_={"timeout": "2s"})
        await eventually(lambda: first_book.revision == 3, timeout=5, what="revision 3")
        policy = first_book.policy(ECHO)
        assert (policy.balancer.picker.value, policy.calls.retry.max_attempts) == (
            "round_robin",
            5,
        )
        assert policy.calls.timeout_s == 2.0

        await first.set(ECHO, set_={}, reset=True)
        await eventually(
            lambda: second_book.stored(ECHO) is None, timeout=5, what="the reset to arrive"
        )
        assert second_book.policy(ECHO).calls.retry.max_attempts == 3


async def test_bad_changes_store_nothing(registries):
    book = PolicyBook()
    async with PolicyWatcher(engine=registries[0].engine, book=book) as watcher:
        with pytest.raises(InvalidArgument, match=r"^breaker\.probes: must be at least 1"):
            await watcher.set(ECHO, set_={"picker": "random", "breaker.probes": "0"})
        with pytest.raises(InvalidArgument, match=r"^nonsense: unknown policy setting"):
            await watcher.set(ECHO, set_={}, unset=("nonsense",))
        with pytest.raises(InvalidArgument, match=r"^service: "):
            await watcher.set("a b", set_={"picker": "random"})
        await watcher.sync()
        assert book.revision == 0 and book.stored(ECHO) is None


async def test_a_restarted_bus_keeps_the_policies(db_url):
    settings = {"lease_ttl": timedelta(seconds=10), "sweep_interval": timedelta(seconds=1)}
    async with Registry(db_url=db_url, **settings) as registry:
        watcher = PolicyWatcher(engine=registry.engine, book=PolicyBook())
        async with watcher:
            await watcher.set(ECHO, set_={"mode": "failfast"})
    book = PolicyBook()
    async with Registry(db_url=db_url, **settings) as registry:
        await PolicyWatcher(engine=registry.engine, book=book).sync()
        assert book.policy(ECHO).calls.mode.value == "failfast"
