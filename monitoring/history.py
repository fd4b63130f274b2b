"""Traffic history: rollups at 10 s, 1 min and 1 h in the bus database, kept for a while.

Each bus writes what its recorder counted in each 10-second window (one row per key that
counted anything). Closed minutes are then compacted into 1-minute rows and closed hours
into 1-hour rows, once, by whichever bus gets there first: the compaction and the mark
of how far it got (``monitoring_rollup_state``) commit together. Old rows go after their
resolution's retention. A query reads the coarsest resolution that fits its step where
it is compacted, and finer rows for the recent part that is not yet.

Everything here blocks on the database; :class:`Monitoring` calls it in a thread.

>>> from powerbus.bus.kernel.database import create_engine
>>> from powerbus.monitoring.migrations import MIGRATIONS
>>> engine = create_engine("sqlite://"); MIGRATIONS.run(engine)
>>> store = RollupStore(engine, writer="bus-1")
>>> key = TallyKey("svc", "M", "n1", "c", "OK", CallOrigin.ROUTED)
>>> store.write(1_700_000_000, {key: Sample(count=3)})
1
>>> [p["requests"] for p in store.query(since=1_700_000_000, until=1_700_000_020, step=10)]
[3, 0]
>>> engine.dispose()
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from powerbus.bus.kernel.calls import CallOrigin
from powerbus.bus.kernel.database import read_transaction, write_transaction
from powerbus.load_balancer import StatusCode
from powerbus.monitoring.tables import rollup_state, rollups
from powerbus.monitoring.tally import Sample, TallyKey
from powerbus.monitoring.window import Rates

__all__ = ["GROUPS", "RESOLUTIONS", "RollupStore"]

RESOLUTIONS = (10, 60, 3600)
"""Seconds per rollup row, finest first."""
GROUPS = ("service", "method", "node", "caller", "code", "origin")
"""What a query's series may be split by."""
_COLUMN = {"node": "node_id"}
# 10 s rows of a minute are complete once every bus flushed that minute's last window.
_FLUSH_LAG_S = 30
MAX_POINTS = 2000
_KEY_COLUMNS = ("service", "method", "node_id", "caller", "code", "origin")


class RollupStore:
    """Rollups of one database; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        *,
        writer: str,
        retention: Mapping[int, timedelta] | None = None,
    ) -> None:
        self._engine = engine
        self._writer = writer[:64]
        self._retention = dict(retention or {})

    def write(self, bucket_start: int, deltas: Mapping[TallyKey, Sample]) -> int:
        """Store what each key counted in the 10 s window from ``bucket_start``."""
        rows = [
            _row(10, bucket_start, key, sample, self._writer)
            for key, sample in deltas.items()
            if sample.count > 0
        ]
        if rows:
            with write_transaction(self._engine) as conn:
                conn.execute(rollups.insert(), rows)
        return len(rows)

    def compact(self, now: float) -> None:
        """Roll closed minutes into 1 min rows and closed hours into 1 h rows; drop rows
        past their retention."""
        with write_transaction(self._engine) as conn:
            upto = math.floor((now - _FLUSH_LAG_S) / 60) * 60
            minutes_done = self._compact(conn, 10, 60, upto)
        with write_transaction(self._engine) as conn:
            self._compact(conn, 60, 3600, math.floor(minutes_done / 3600) * 3600)
        with write_transaction(self._engine) as conn:
            for resolution, keep in self._retention.items():
                conn.execute(
                    rollups.delete().where(
                        rollups.c.resolution_s == resolution,
                        rollups.c.bucket_start < int(now - keep.total_seconds()),
                    )
                )

    def query(
        self,
        *,
        since: float,
        until: float,
        step: int,
        service: str = "",
        node: str = "",
        caller: str = "",
        by: str = "",
        unwritten: Mapping[TallyKey, Sample] | None = None,
        unwritten_at: int = 0,
    ) -> list[dict[str, Any]]:
        """Points ``step`` seconds apart from ``since`` to ``until``, zeros where nothing
        was counted; with ``by`` (one of :data:`GROUPS`) each point has ``series``.

        ``unwritten`` is what this bus counted since its last rollup (in the window from
        ``unwritten_at``), so the newest point is complete too."""
        step = max(10, int(step))
        start = math.floor(since / step) * step
        count = max(1, math.ceil((until - start) / step))
        if count > MAX_POINTS:
            raise ValueError(f"{count} points of {step}s; at most {MAX_POINTS} per query")
        totals: dict[int, dict[str, Sample]] = {}
        errors: dict[int, dict[str, int]] = {}
        extra = [
            _Unwritten(unwritten_at, k, s)
            for k, s in (unwritten or {}).items()
            if start <= unwritten_at < until
            and (not service or k.service == service)
            and (not node or k.node_id == node)
            and (not caller or k.caller == caller)
        ]
        pieces = self._pieces(start, until, step)
        for resolution, low, high in [*pieces, (0, 0, 0)]:
            found = (
                self._rows(resolution, low, high, service, node, caller) if resolution else extra
            )
            for row in found:
                slot = (int(row.bucket_start) - start) // step
                name = str(getattr(row, _COLUMN.get(by, by))) if by else ""
                sample = _sample(row)
                bucket = totals.setdefault(slot, {})
                bucket[name] = bucket[name] + sample if name in bucket else sample
                if row.code != StatusCode.OK:
                    failed = errors.setdefault(slot, {})
                    failed[name] = failed.get(name, 0) + int(row.count)
        # The last point may cover less than a step: its rates are over what it covers.
        return [
            _point(
                start + i * step,
                max(1.0, min(step, until - (start + i * step))),
                totals.get(i, {}),
                errors.get(i, {}),
                by,
            )
            for i in range(count)
        ]

    def recent_keys(self, since: float) -> set[TallyKey]:
        """Every key that counted something since ``since`` (any resolution)."""
        columns = [rollups.c[c] for c in _KEY_COLUMNS]
        with read_transaction(self._engine) as conn:
            found = conn.execute(
                sa.select(*columns).where(rollups.c.bucket_start >= int(since)).distinct()
            ).all()
        return {
            TallyKey(r.service, r.method, r.node_id, r.caller, r.code, _origin(r.origin))
            for r in found
        }

    # Internals.

    def _compact(self, conn: Connection, source: int, target: int, upto: int) -> int:
        """Roll ``source`` rows before ``upto`` not yet rolled into ``target`` rows; returns
        how far ``target`` is compacted now."""
        state = sa.select(rollup_state.c.compacted_until).where(
            rollup_state.c.resolution_s == target
        )
        if conn.dialect.name == "postgresql":
            state = state.with_for_update()
        done = conn.execute(state).scalar_one_or_none()
        if done is None:
            first = conn.execute(
                sa.select(sa.func.min(rollups.c.bucket_start)).where(
                    rollups.c.resolution_s == source
                )
            ).scalar_one_or_none()
            done = math.floor(first / target) * target if first is not None else upto
            conn.execute(rollup_state.insert().values(resolution_s=target, compacted_until=done))
        if upto <= done:
            return int(done)
        merged: dict[tuple[int, TallyKey], Sample] = {}
        for row in self._rows_in(conn, source, done, upto):
            key = (
                math.floor(row.bucket_start / target) * target,
                TallyKey(
                    row.service, row.method, row.node_id, row.caller, row.code, _origin(row.origin)
                ),
            )
            sample = _sample(row)
            merged[key] = merged[key] + sample if key in merged else sample
        if merged:
            conn.execute(
                rollups.insert(),
                [_row(target, t, k, s, self._writer) for (t, k), s in merged.items()],
            )
        conn.execute(
            rollup_state.update()
            .where(rollup_state.c.resolution_s == target)
            .values(compacted_until=upto)
        )
        return upto

    def _pieces(self, start: int, until: float, step: int) -> list[tuple[int, int, int]]:
        """(resolution, from, to) ranges covering [start, until): the coarsest resolution
        not above ``step`` where it is compacted, finer ones after."""
        with read_transaction(self._engine) as conn:
            marks = {int(r[0]): int(r[1]) for r in conn.execute(sa.select(rollup_state)).all()}
        usable = [r for r in RESOLUTIONS if r <= step and step % r == 0] or [10]
        pieces: list[tuple[int, int, int]] = []
        low, high = start, math.ceil(until)
        for resolution in reversed(usable):
            if resolution == usable[0]:
                pieces.append((resolution, low, high))
                break
            boundary = min(int(marks.get(resolution, low)), high)
            if boundary > low:
                pieces.append((resolution, low, boundary))
                low = boundary
        return pieces

    def _rows(
        self, resolution: int, low: int, high: int, service: str, node: str, caller: str
    ) -> list[Any]:
        query = sa.select(rollups).where(
            rollups.c.resolution_s == resolution,
            rollups.c.bucket_start >= low,
            rollups.c.bucket_start < high,
        )
        for column, value in (("service", service), ("node_id", node), ("caller", caller)):
            if value:
                query = query.where(rollups.c[column] == value)
        with read_transaction(self._engine) as conn:
            return list(conn.execute(query).all())

    @staticmethod
    def _rows_in(conn: Connection, resolution: int, low: int, high: int) -> Iterable[Any]:
        return conn.execute(
            sa.select(rollups).where(
                rollups.c.resolution_s == resolution,
                rollups.c.bucket_start >= low,
                rollups.c.bucket_start < high,
            )
        ).all()


class _Unwritten:
    """Counts not yet written, shaped like a row."""

    def __init__(self, at: int, key: TallyKey, sample: Sample) -> None:
        self.bucket_start = at
        self.service, self.method, self.node_id = key.service, key.method, key.node_id
        self.caller, self.code, self.origin = key.caller, key.code, key.origin.value
        self.count, self.latency_sum, self.buckets = (
            sample.count,
            sample.latency_sum,
            sample.buckets,
        )
        self.bytes_in, self.bytes_out = sample.bytes_in, sample.bytes_out


def _row(resolution: int, start: int, key: TallyKey, s: Sample, writer: str) -> dict[str, Any]:
    return {
        "resolution_s": resolution,
        "bucket_start": int(start),
        "service": key.service,
        "method": key.method,
        "node_id": key.node_id,
        "caller": key.caller,
        "code": key.code,
        "origin": key.origin.value,
        "count": s.count,
        "latency_sum": s.latency_sum,
        "buckets": list(s.buckets),
        "bytes_in": s.bytes_in,
        "bytes_out": s.bytes_out,
        "writer": writer,
    }


def _sample(row: Any) -> Sample:
    return Sample(
        int(row.count),
        float(row.latency_sum),
        tuple(int(n) for n in row.buckets),
        int(row.bytes_in),
        int(row.bytes_out),
    )


def _origin(value: str) -> CallOrigin:
    try:
        return CallOrigin(value)
    except ValueError:
        return CallOrigin.ROUTED


def _point(
    at: int, seconds: float, samples: Mapping[str, Sample], errors: Mapping[str, int], by: str
) -> dict[str, Any]:
    total = Sample.total(samples.values())
    point: dict[str, Any] = {"t": at, **_figures(total, sum(errors.values()), seconds)}
    if by:
        point["series"] = {
            name: _figures(sample, errors.get(name, 0), seconds)
            for name, sample in sorted(samples.items())
        }
    return point


def _figures(sample: Sample, errors: int, seconds: float) -> dict[str, Any]:
    return Rates(requests=sample.count, errors=errors, seconds=seconds, sample=sample).as_json()
