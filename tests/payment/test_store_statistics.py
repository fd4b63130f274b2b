"""On PostgreSQL the payment store keeps the planner's statistics fresh during a burst of
postings: without it the look-ups by serial and account became table scans as the table
grew (50,000 postings fell from 6,750/s to 390/s)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from powerbus.bus.kernel.database import create_engine
from powerbus.nodes.payment.store.migrations import MIGRATIONS
from powerbus.nodes.payment.store.payments import PaymentStore
from powerbus.nodes.payment.store.records import PostRequest


def _request(n: int) -> PostRequest:
    return PostRequest(
        bank_code="0102",
        bank_txn_id=f"S{n:012d}",
        account_id=f"31{n % 997:08d}",
        amount=1_000 + n,
        channel="PAYMENT_CHANNEL_BANK_COUNTER",
        paid_at=dt.datetime(2026, 12, 4, 9),
    )


def test_a_burst_of_postings_has_postgresql_analyze_the_ledger(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        MIGRATIONS.run(engine)
        store = PaymentStore(engine, clock=lambda: dt.datetime.now(dt.timezone.utc))
        requests = [_request(n) for n in range(7_000)]
        for start in range(0, len(requests), 1_000):
            outcomes = store.post(requests[start : start + 1_000])
            assert all(not isinstance(o, Exception) for o in outcomes)
        if engine.dialect.name != "postgresql":
            return  # SQLite plans from its indexes alone
        with engine.connect() as conn:
            analyzed = conn.execute(
                sa.text(
                    "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL"
                    " AND schemaname = current_schema()"
                )
            ).scalars()
            assert {"pay_payments", "pay_transactions", "pay_entries"} <= set(analyzed)
    finally:
        engine.dispose()
