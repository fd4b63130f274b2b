"""Monthly partitions of ``metering_intervals`` on PostgreSQL, created as writes reach them.

There is no DEFAULT partition: a row for a month nobody created fails loudly instead of
piling up where a later CREATE ... PARTITION OF would have to move it. Creation takes an
advisory lock, so instances writing the same new month take turns.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from powerbus.bus.kernel.database import write_transaction

__all__ = ["Partitions", "month_of"]

_LOCK_KEY = 0x6D65746572696E67  # "metering"


def month_of(t: datetime) -> tuple[int, int]:
    """The UTC (year, month) whose partition holds an interval ending at ``t``."""
    u = t.astimezone(timezone.utc)
    return u.year, u.month


class Partitions:
    """Remembers which months exist, so the common write asks the catalog nothing."""

    def __init__(self, table: str = "metering_intervals") -> None:
        self.table = table
        self._known: set[tuple[int, int]] = set()

    def ensure(self, engine: Engine, months: Iterable[tuple[int, int]]) -> None:
        """Create the partitions of ``months`` that do not exist yet."""
        missing = sorted(set(months) - self._known)
        if not missing:
            return
        with write_transaction(engine) as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
            for year, month in missing:
                conn.exec_driver_sql(self._ddl(year, month))
        self._known.update(missing)

    def _ddl(self, year: int, month: int) -> str:
        after = (year + month // 12, month % 12 + 1)
        return (
            f"CREATE TABLE IF NOT EXISTS {self.table}_p{year:04d}{month:02d} "
            f"PARTITION OF {self.table} FOR VALUES FROM "
            f"('{year:04d}-{month:02d}-01 00:00:00+00') "
            f"TO ('{after[0]:04d}-{after[1]:02d}-01 00:00:00+00')"
        )
