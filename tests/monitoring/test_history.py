"""Rollups in the database: written every 10 s, compacted to 1 min and 1 h, pruned, queried."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from powerbus.bus.kernel.database import create_engine, read_transaction
from powerbus.monitoring import CallOrigin
from powerbus.monitoring.history import RollupStore
from powerbus.monitoring.migrations import MIGRATIONS
from powerbus.monitoring.tally import Sample, Tally, TallyKey

HOUR = 1_700_000_000 // 3600 * 3600  # a whole hour


def key(node: str = "n1", code: str = "OK", service: str = "Svc") -> TallyKey:
    return TallyKey(service, "M", node, "c", code, CallOrigin.ROUTED)


def calls(n: int, latency: float = 0.002) -> Sample:
    tally = Tally()
    for _ in range(n):
        tally.add(latency, 10, 20)
    return tally.sample()


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(db_url, pool_size=2)
    MIGRATIONS.run(engine)
    yield engine
    engine.dispose()


def rows(engine: sa.Engine, resolution: int) -> list[tuple[int, int]]:
    with read_transaction(engine) as conn:
        found = conn.execute(
            sa.text(
                "SELECT bucket_start, count FROM monitoring_rollups "
                "WHERE resolution_s = :r ORDER BY bucket_start"
            ),
            {"r": resolution},
        ).all()
    return [(int(start), int(count)) for start, count in found]


def test_migrations_keep_their_own_version_table(engine: sa.Engine) -> None:
    MIGRATIONS.run(engine)  # a second start changes nothing
    tables = set(sa.inspect(engine).get_table_names())
    assert {"monitoring_rollups", "monitoring_rollup_state", "monitoring_alerts"} <= tables
    assert MIGRATIONS.version_table in tables and "registry_alembic_version" not in tables


def test_points_sum_rows_per_step_and_fill_gaps_with_zeros(engine: sa.Engine) -> None:
    store = RollupStore(engine, writer="a")
    store.write(HOUR, {key(): calls(4), key(code="UNAVAILABLE"): calls(1)})
    store.write(HOUR + 20, {key("n2"): calls(5, latency=0.2)})
    points = store.query(since=HOUR, until=HOUR + 30, step=10)
    assert [p["requests"] for p in points] == [5, 0, 5]
    assert points[0]["errors"] == 1 and points[0]["error_share"] == pytest.approx(0.2)
    assert points[0]["qps"] == pytest.approx(0.5)
    assert 100 < points[2]["p99_ms"] <= 250
    by_node = store.query(since=HOUR, until=HOUR + 30, step=30, by="node")
    assert {n: s["requests"] for n, s in by_node[0]["series"].items()} == {"n1": 5, "n2": 5}
    only_n2 = store.query(since=HOUR, until=HOUR + 30, step=10, node="n2")
    assert [p["requests"] for p in only_n2] == [0, 0, 5]


def test_two_writers_are_summed(engine: sa.Engine) -> None:
    RollupStore(engine, writer="bus-a").write(HOUR, {key(): calls(2)})
    RollupStore(engine, writer="bus-b").write(HOUR, {key(): calls(3)})
    points = RollupStore(engine, writer="x").query(since=HOUR, until=HOUR + 10, step=10)
    assert points[0]["requests"] == 5


def test_closed_minutes_and_hours_are_compacted_once(engine: sa.Engine) -> None:
    store = RollupStore(engine, writer="a")
    for minute in range(61):
        for tens in range(6):
            store.write(HOUR + minute * 60 + tens * 10, {key(): calls(1)})
    store.compact(HOUR + 3600 + 120)
    store.compact(HOUR + 3600 + 120)  # again: nothing is counted twice
    minutes = rows(engine, 60)
    assert len(minutes) == 61 and {count for _, count in minutes} == {6}
    hours = rows(engine, 3600)
    assert hours == [(HOUR, 360)]
    # Queries use the coarse rows where they exist and the fine ones after.
    hourly = store.query(since=HOUR, until=HOUR + 7200, step=3600)
    assert [p["requests"] for p in hourly] == [360, 6]
    by_minute = store.query(since=HOUR + 3540, until=HOUR + 3660, step=60)
    assert [p["requests"] for p in by_minute] == [6, 6]


def test_rows_past_their_retention_are_deleted(engine: sa.Engine) -> None:
    store = RollupStore(engine, writer="a", retention={10: timedelta(minutes=5)})
    store.write(HOUR, {key(): calls(1)})
    store.write(HOUR + 600, {key(): calls(1)})
    store.compact(HOUR + 610)
    assert [start for start, _ in rows(engine, 10)] == [HOUR + 600]
    assert rows(engine, 60)[0][1] == 1  # the minute kept it


def test_recent_keys_name_every_edge_seen(engine: sa.Engine) -> None:
    store = RollupStore(engine, writer="a")
    store.write(HOUR, {key("n1"): calls(1), key("n2", service="Other"): calls(1)})
    assert {(k.service, k.node_id) for k in store.recent_keys(HOUR - 10)} == {
        ("Svc", "n1"),
        ("Other", "n2"),
    }
    assert store.recent_keys(HOUR + 10) == set()


def test_too_many_points_are_refused(engine: sa.Engine) -> None:
    with pytest.raises(ValueError, match="at most"):
        RollupStore(engine, writer="a").query(since=0, until=HOUR, step=10)
