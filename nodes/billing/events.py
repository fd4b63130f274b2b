"""The seam where billing's events leave: ``billing.bill.issued`` and
``billing.run.finished``.

A billing run calls :class:`BillingEvents` inside the very database transaction that
issues the bills or finishes the run, so an event is recorded exactly when the change
commits, never for a change that rolled back and never lost for one that committed: the
transactional-outbox pattern. :class:`~powerbus.nodes.billing.outbox.OutboxEvents`
writes them to the SDK's outbox (the node does when ``--events-in`` names the bus's
events socket); without it a node runs with :class:`NoOutbox`, which records nothing and
says so at start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from sqlalchemy.engine import Connection

__all__ = ["BillingEvents", "IssuedBill", "NoOutbox", "RunFinished"]


@dataclass(frozen=True, kw_only=True)
class IssuedBill:
    """What ``billing.bill.issued`` says of one bill."""

    bill_id: str
    account_id: str
    bill_month: str
    total_fen: int
    due_date: date
    run_id: str
    kwh_milli: int = 0
    """Billed energy in thousandths of a kWh."""


@dataclass(frozen=True, kw_only=True)
class RunFinished:
    """What ``billing.run.finished`` says of a run."""

    run_id: str
    state: str
    accounts_total: int
    bills_issued: int
    accounts_skipped: int
    accounts_failed: int
    total_billed_fen: int


class BillingEvents(Protocol):
    """Records billing's events in the caller's transaction (``conn``)."""

    def bills_issued(self, conn: Connection, bills: Sequence[IssuedBill]) -> None:
        """``billing.bill.issued``, once per bill, as the bills are issued."""

    def run_finished(self, conn: Connection, run: RunFinished) -> None:
        """``billing.run.finished``, as the run's final state is written."""


class NoOutbox:
    """No outbox yet: nothing is recorded or published (see the module docstring)."""

    def bills_issued(self, conn: Connection, bills: Sequence[IssuedBill]) -> None:
        return None

    def run_finished(self, conn: Connection, run: RunFinished) -> None:
        return None
