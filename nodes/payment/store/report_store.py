"""Stored reconciliation reports, one per (bank, settlement date): what
``GetReconciliationReport`` serves and ``ResolveDifference`` checks a plan against.

>>> from powerbus.bus.kernel.database import create_engine
>>> from powerbus.nodes.payment.store.migrations import MIGRATIONS
>>> engine = create_engine("sqlite://"); MIGRATIONS.run(engine)
>>> day = dt.date(2026, 12, 4)
>>> ReportStore(engine).save("0102", day, generated_at=dt.datetime(2026, 12, 5), text="{}",
...                          proto=b"report")
>>> ReportStore(engine).load("0102", day)
b'report'
>>> engine.dispose()
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from powerbus.bus.kernel.database import read_transaction, write_transaction
from powerbus.bus.kernel.errors import NotFound
from powerbus.nodes.payment.store.tables import reports

__all__ = ["ReportStore"]


class ReportStore:
    """Stored reconciliation reports, one per (bank, settlement date); a rerun replaces it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(
        self, bank_code: str, day: dt.date, *, generated_at: dt.datetime, text: str, proto: bytes
    ) -> None:
        with write_transaction(self.engine) as conn:
            key = (reports.c.bank_code == bank_code) & (reports.c.settlement_date == day)
            conn.execute(reports.delete().where(key))
            conn.execute(
                reports.insert().values(
                    bank_code=bank_code,
                    settlement_date=day,
                    generated_at=generated_at,
                    report_json=text,
                    report_proto=proto,
                )
            )

    def load(self, bank_code: str, day: dt.date) -> bytes:
        """The stored report (serialized proto); NotFound when the date was not reconciled."""
        with read_transaction(self.engine) as conn:
            found = conn.execute(
                sa.select(reports.c.report_proto).where(
                    reports.c.bank_code == bank_code, reports.c.settlement_date == day
                )
            ).scalar_one_or_none()
        if found is None:
            raise NotFound(f"bank {bank_code} has no reconciliation report for {day}")
        return bytes(found)
