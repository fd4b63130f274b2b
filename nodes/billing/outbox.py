"""Billing's events in the SDK outbox: ``billing.bill.issued`` and ``billing.run.finished``
as protos/powerbus/events/v1/events.proto defines them, staged on the transaction that
issues the bills or finishes the run.

>>> from datetime import date
>>> from powerbus.bus.kernel.database import write_transaction
>>> from powerbus.nodes.billing.events import IssuedBill
>>> from powerbus.nodes.sdk.events import Outbox
>>> box = Outbox.open("sqlite://", source="billing-1")
>>> events = OutboxEvents(box, zone=ZoneInfo("Asia/Shanghai"))
>>> bill = IssuedBill(bill_id="B1", account_id="A1", bill_month="2026-10", total_fen=12345,
...                   due_date=date(2026, 11, 15), run_id="R1", kwh_milli=250_000)
>>> with write_transaction(box.engine) as conn:
...     events.bills_issued(conn, [bill])
>>> [row.topic for row in box.pending(after=0)]
['billing.bill.issued']
>>> box.close()
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection

from powerbus.billing.v1 import billing_pb2
from powerbus.common.v1 import common_pb2
from powerbus.events.v1 import events_pb2
from powerbus.nodes.billing.convert import date_to_proto, enum_value, money, timestamp
from powerbus.nodes.billing.events import IssuedBill, RunFinished
from powerbus.nodes.sdk.events import Outbox

__all__ = ["OutboxEvents"]


class OutboxEvents:
    """:class:`~powerbus.nodes.billing.events.BillingEvents` written to ``outbox``."""

    def __init__(self, outbox: Outbox, *, zone: ZoneInfo) -> None:
        self.outbox = outbox
        self._zone = zone

    def bills_issued(self, conn: Connection, bills: Sequence[IssuedBill]) -> None:
        """Stage one ``billing.bill.issued`` per bill on ``conn``."""
        self.outbox.add_many(conn, [self._issued(b) for b in bills])

    def run_finished(self, conn: Connection, run: RunFinished) -> None:
        """Stage ``billing.run.finished`` on ``conn``."""
        self.outbox.add(
            conn,
            events_pb2.BillingRunFinished(
                run_id=run.run_id,
                state=enum_value(run.state, billing_pb2.BillingRunState),
                bills_issued=run.bills_issued,
                accounts_skipped=run.accounts_skipped,
                accounts_failed=run.accounts_failed,
                total_billed=money(run.total_billed_fen),
            ),
        )

    def _issued(self, bill: IssuedBill) -> events_pb2.BillIssued:
        return events_pb2.BillIssued(
            bill_id=bill.bill_id,
            account=common_pb2.AccountRef(account_id=bill.account_id),
            period=self._month(bill.bill_month),
            total=money(bill.total_fen),
            due_date=date_to_proto(bill.due_date),
            run_id=bill.run_id,
            # kWh is informational on the wire (a double); the money is the integer fen.
            kwh=bill.kwh_milli / 1000,
        )

    def _month(self, month: str) -> common_pb2.Period:
        """The bill month ``YYYY-MM`` as the half-open local-time period it covers."""
        year, number = (int(part) for part in month.split("-"))
        start = datetime(year, number, 1, tzinfo=self._zone)
        end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=self._zone)
        return common_pb2.Period(start=timestamp(start), end=timestamp(end))
