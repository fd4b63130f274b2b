"""The ledger's invariants, checked against the database as it is.

* every journal transaction balances, and so do all of them together;
* each bank serial is posted at most once, and never both posted and blocked by a
  reversal that arrived before it;
* each payment's lines on its bank's clearing account net to its amount while POSTED
  and to zero once REVERSED;
* an applied, posted payment has nothing left in suspense; a reversed one nets to zero
  on every account.

Tests run :func:`audit` after every step; operators can too.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from powerbus.adapters.bank import PaymentStatus, ReverseOutcome
from powerbus.nodes.payment.ledger import Book, Kind
from powerbus.nodes.payment.store.tables import entries, payments, reversals, transactions

__all__ = ["Audit", "audit"]


@dataclass(frozen=True, slots=True)
class Audit:
    """Counts and the problems found (empty when every invariant holds)."""

    problems: tuple[str, ...]
    payments: int
    posted: int
    reversed: int
    transactions: int
    debits: int
    credits: int

    @property
    def ok(self) -> bool:
        return not self.problems


def audit(conn: Connection) -> Audit:
    """Check every invariant on ``conn`` (read it in one snapshot)."""
    problems: list[str] = []
    by_txn: dict[int, int] = defaultdict(int)
    # payment -> account -> debit - credit
    net: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    debits = credits = 0
    query = sa.select(
        transactions.c.txn_id,
        transactions.c.kind,
        transactions.c.payment_id,
        entries.c.account,
        entries.c.debit,
        entries.c.credit,
    ).join(entries, entries.c.txn_id == transactions.c.txn_id)
    for txn_id, kind, payment_id, account, debit, credit in conn.execute(query):
        by_txn[txn_id] += debit - credit
        debits += debit
        credits += credit
        if kind != Kind.WRITE_OFF.value:
            net[payment_id][account] += debit - credit
    problems += [f"transaction {t} is off by {d} fen" for t, d in sorted(by_txn.items()) if d]
    if debits != credits:
        problems.append(f"debits {debits} ≠ credits {credits}")
    count = posted = reversed_ = 0
    rows = conn.execute(
        sa.select(
            payments.c.payment_id,
            payments.c.bank_code,
            payments.c.bank_txn_id,
            payments.c.account_id,
            payments.c.amount,
            payments.c.status,
            payments.c.application_pending,
        )
    )
    seen: set[tuple[str, str]] = set()
    for pid, bank, txn, account_id, amount, status, pending in rows:
        count += 1
        if (bank, txn) in seen:
            problems.append(f"bank {bank} txn {txn} posted twice")
        seen.add((bank, txn))
        live = status == PaymentStatus.POSTED.value
        posted += live
        reversed_ += not live
        moves = net.get(pid, {})
        clearing = moves.get(f"{Book.BANK_CLEARING.value}:{bank}", 0)
        if clearing != (amount if live else 0):
            problems.append(
                f"payment {pid} clears {clearing} fen, expected {amount if live else 0}"
            )
        suspense = moves.get(f"{Book.SUSPENSE.value}:{account_id}", 0)
        expected = -amount if live and pending else 0
        if suspense != expected:
            problems.append(
                f"payment {pid} holds {-suspense} fen in suspense, expected {-expected}"
            )
        if not live:
            left = {a: v for a, v in moves.items() if v}
            if left:
                problems.append(f"reversed payment {pid} still moves {left}")
    blocked = conn.execute(
        sa.select(reversals.c.bank_code, reversals.c.original_txn_id).where(
            reversals.c.outcome == ReverseOutcome.ORIGINAL_NOT_FOUND.name
        )
    )
    problems += [
        f"bank {b} txn {t} posted although a reversal blocked it"
        for b, t in blocked
        if (b, t) in seen
    ]
    return Audit(
        problems=tuple(problems),
        payments=count,
        posted=posted,
        reversed=reversed_,
        transactions=len(by_txn),
        debits=debits,
        credits=credits,
    )
