"""The payment store: payments, reversals and their journal, in one database transaction
per call (or per batch of posts).

Concurrency. Every write runs in :func:`write_transaction`: on SQLite that is ``BEGIN
IMMEDIATE``, so writers queue on the database lock; on PostgreSQL the transaction first
takes one advisory lock, for the same effect. A duplicate that arrives while the first
post is in flight therefore waits for it and then finds it; the unique constraint on
(bank_code, bank_txn_id) is the last line should anything get past that. Posting and
reversing the same serial are serialized the same way, so a reversal that arrives first
always blocks the original.

>>> from powerbus.bus.kernel.database import create_engine
>>> from powerbus.nodes.payment.store.migrations import MIGRATIONS
>>> engine = create_engine("sqlite://"); MIGRATIONS.run(engine)
>>> store = PaymentStore(engine, clock=lambda: dt.datetime(2026, 12, 4, tzinfo=dt.timezone.utc))
>>> req = PostRequest(bank_code="0102", bank_txn_id="B1", account_id="A1", amount=500,
...     channel="PAYMENT_CHANNEL_BANK_COUNTER", paid_at=dt.datetime(2026, 12, 4, 9))
>>> [o.duplicate for o in store.post([req, req])]
[False, True]
>>> store.audit().problems
()
>>> engine.dispose()
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from powerbus.adapters.bank import ItemResolution, LedgerEntry, PaymentStatus, ReverseOutcome
from powerbus.bus.kernel.database import chunked, read_transaction, write_transaction
from powerbus.bus.kernel.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    PowerbusError,
)
from powerbus.nodes.payment import ledger
from powerbus.nodes.payment.resolution import ResolutionPlan, describe, report_id
from powerbus.nodes.payment.store import resolutions
from powerbus.nodes.payment.store.audit import Audit, audit
from powerbus.nodes.payment.store.bulk import insert_many
from powerbus.nodes.payment.store.journal import Journal
from powerbus.nodes.payment.store.records import (
    PaymentRecord,
    PostOutcome,
    PostRequest,
    ReversalRequest,
    ReversalResult,
)
from powerbus.nodes.payment.store.rows import record_of, row_of
from powerbus.nodes.payment.store.tables import (
    entries,
    payments,
    reversals,
    transactions,
)

__all__ = ["EventSink", "PaymentStore"]

_REVERSED = PaymentStatus.REVERSED.value
_NOT_FOUND = ReverseOutcome.ORIGINAL_NOT_FOUND.name
_PG_WRITE_LOCK = 0x7061796D656E74  # "payment": one writer at a time, as on SQLite


class EventSink:
    """The outbox seam: called inside the posting's database transaction.

    :class:`~powerbus.nodes.payment.outbox.OutboxSink` inserts ``payment.payment.posted`` /
    ``payment.payment.reversed`` rows into the SDK outbox on ``conn``, so the event
    commits with the money or not at all. This base class records nothing; it publishes
    nothing.
    """

    def posted(self, conn: Connection, payment: PaymentRecord) -> None:
        """A new payment was recorded (not called for duplicates)."""

    def posted_many(self, conn: Connection, payments: Sequence[PaymentRecord]) -> None:
        """The new payments of one posting batch, in order; one :meth:`posted` each unless
        overridden (an outbox stages them in one statement)."""
        for payment in payments:
            self.posted(conn, payment)

    def reversed(self, conn: Connection, payment: PaymentRecord) -> None:
        """A payment became REVERSED."""


class PaymentStore:
    """Payments and the journal on ``engine`` (migrated by ``MIGRATIONS``)."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], dt.datetime],
        events: EventSink | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.events = events or EventSink()
        self._analyzed_at: int | None = None
        """The payment count (``seq``) when this store last had PostgreSQL analyze."""

    # -- posting -------------------------------------------------------------------------

    def post(self, requests: Sequence[PostRequest]) -> list[PostOutcome | PowerbusError]:
        """Record ``requests`` in one transaction, in order; one outcome or error each.

        A request whose serial is already posted (or earlier in the batch) returns that
        payment as a duplicate, or ``AlreadyExists`` when account or amount differ; a
        serial reversed before it arrived is refused ``FailedPrecondition``.
        """
        with self._writing() as conn:
            return self._post(conn, requests)

    def _post(
        self, conn: Connection, requests: Sequence[PostRequest], *, actor: str = ""
    ) -> list[PostOutcome | PowerbusError]:
        keys = {(r.bank_code, r.bank_txn_id) for r in requests}
        known = {(p.bank_code, p.bank_txn_id): p for p in self._by_keys(conn, keys)}
        blocked = self._blocked(conn, keys)
        waiting = self._accounts_pending(conn, {r.account_id for r in requests})
        journal = Journal(conn, clock=self.clock)
        seq = conn.execute(sa.select(sa.func.coalesce(sa.func.max(payments.c.seq), 0))).scalar_one()
        now = self.clock()
        rows: list[dict[str, Any]] = []
        out: list[PostOutcome | PowerbusError] = []
        for request in requests:
            key = (request.bank_code, request.bank_txn_id)
            found = known.get(key)
            if found is not None:
                out.append(_repeat(found, request))
                continue
            if key in blocked:
                out.append(
                    FailedPrecondition(
                        f"bank {request.bank_code} transaction {request.bank_txn_id} was "
                        f"reversed (reversal {blocked[key]}) before it arrived"
                    )
                )
                continue
            seq += 1
            row = row_of(request, seq=seq, posted_at=now)
            rows.append(row)
            record = record_of(row)
            known[key] = record
            journal.add(
                ledger.collection(
                    bank_code=request.bank_code,
                    account_id=request.account_id,
                    amount=request.amount,
                ),
                payment_id=record.payment_id,
                memo=f"bank {request.bank_code} txn {request.bank_txn_id}",
                actor=actor,
            )
            out.append(PostOutcome(record, False, behind_pending=request.account_id in waiting))
            waiting.add(request.account_id)
        if rows:
            insert_many(conn, payments, rows)
            journal.flush()
            self._keep_statistics(conn, seq)
            self.events.posted_many(
                conn,
                [o.payment for o in out if isinstance(o, PostOutcome) and not o.duplicate],
            )
        return out

    def _keep_statistics(self, conn: Connection, count: int) -> None:
        """On PostgreSQL, analyze the ledger's tables once they grew by a fifth (at least
        5,000 payments) since this store last did. During a burst of postings the
        planner's statistics still describe the near-empty tables autovacuum last saw, so
        the look-ups by serial and by account become table scans: 50,000 postings slowed
        from 6,750/s to 390/s as the table grew. Analyze samples, so it costs milliseconds
        whatever the size."""
        if conn.dialect.name != "postgresql":
            return
        last = self._analyzed_at
        if last is None:
            self._analyzed_at = count  # autovacuum's statistics are as good as any at start
            return
        if count - last < max(_ANALYZE_EVERY, last // 5):
            return
        for table in (payments, transactions, entries):
            conn.exec_driver_sql(f"ANALYZE {table.name}")
        self._analyzed_at = count

    def _by_keys(self, conn: Connection, keys: set[tuple[str, str]]) -> list[PaymentRecord]:
        found: list[PaymentRecord] = []
        by_bank: dict[str, list[str]] = {}
        for bank, txn in keys:
            by_bank.setdefault(bank, []).append(txn)
        for bank, txns in by_bank.items():
            for chunk in chunked(txns):
                query = sa.select(payments).where(
                    payments.c.bank_code == bank, payments.c.bank_txn_id.in_(chunk)
                )
                found += [PaymentRecord.from_row(r) for r in conn.execute(query)]
        return found

    def _blocked(self, conn: Connection, keys: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
        blocked: dict[tuple[str, str], str] = {}
        txns = sorted({txn for _bank, txn in keys})
        for chunk in chunked(txns):
            query = sa.select(
                reversals.c.bank_code, reversals.c.original_txn_id, reversals.c.reversal_txn_id
            ).where(reversals.c.original_txn_id.in_(chunk), reversals.c.outcome == _NOT_FOUND)
            for bank, original, reversal in conn.execute(query):
                if (bank, original) in keys:
                    blocked[(bank, original)] = reversal
        return blocked

    def _accounts_pending(self, conn: Connection, accounts: set[str]) -> set[str]:
        pending: set[str] = set()
        for chunk in chunked(sorted(accounts)):
            query = (
                sa.select(payments.c.account_id)
                .where(payments.c.application_pending, payments.c.account_id.in_(chunk))
                .distinct()
            )
            pending.update(conn.execute(query).scalars())
        return pending

    # -- reversing -----------------------------------------------------------------------

    def reverse(self, request: ReversalRequest) -> ReversalResult:
        """Reverse a payment (冲正), or record a reversal of a serial not seen yet."""
        with self._writing() as conn:
            return self._reverse(conn, request)

    def _reverse(
        self, conn: Connection, request: ReversalRequest, *, actor: str = ""
    ) -> ReversalResult:
        payment = self._target(conn, request)
        bank_code = payment.bank_code if payment is not None else request.bank_code
        original = payment.bank_txn_id if payment is not None else request.bank_txn_id
        earlier = conn.execute(
            sa.select(reversals).where(
                reversals.c.bank_code == bank_code,
                reversals.c.reversal_txn_id == request.reversal_txn_id,
            )
        ).first()
        if earlier is not None:
            if earlier.original_txn_id != original:
                raise AlreadyExists(
                    "reversal_txn_id",
                    f"{request.reversal_txn_id} already reversed txn {earlier.original_txn_id}",
                )
            return ReversalResult(ReverseOutcome[earlier.outcome], payment, True)
        now = self.clock()
        if payment is None:
            self._record_reversal(conn, request, bank_code, original, "", _NOT_FOUND, now)
            return ReversalResult(ReverseOutcome.ORIGINAL_NOT_FOUND, None, False)
        if request.amount is not None and request.amount != payment.amount:
            raise FailedPrecondition(
                f"reversal amount {request.amount} fen differs from payment "
                f"{payment.payment_id}'s {payment.amount} fen"
            )
        outcome = ReverseOutcome.REVERSED.name
        self._record_reversal(conn, request, bank_code, original, payment.payment_id, outcome, now)
        if payment.status is PaymentStatus.REVERSED:
            return ReversalResult(ReverseOutcome.REVERSED, payment, True)
        journal = Journal(conn, clock=self.clock)
        journal.add(
            ledger.reversing(journal.lines_of(payment.payment_id), kind=ledger.Kind.REVERSAL),
            payment_id=payment.payment_id,
            memo=f"冲正 {request.reversal_txn_id}: {request.reason}"[:200],
            actor=actor,
        )
        journal.flush()
        # Billing may hold an application we never heard back about: always ask it to
        # unapply (UnapplyPayment of a never-applied payment is NOT_FOUND, taken as done).
        conn.execute(
            payments.update()
            .where(payments.c.payment_id == payment.payment_id)
            .values(
                status=_REVERSED,
                reversal_txn_id=request.reversal_txn_id,
                reversed_at=now,
                reversal_reason=request.reason[:200],
                application_pending=False,
                unapply_pending=True,
            )
        )
        reversed_payment = self._one(conn, payment.payment_id)
        self.events.reversed(conn, reversed_payment)
        return ReversalResult(ReverseOutcome.REVERSED, reversed_payment, False)

    def _target(self, conn: Connection, request: ReversalRequest) -> PaymentRecord | None:
        if request.payment_id:
            found = self._find(conn, payments.c.payment_id == request.payment_id)
            if found is None:
                raise NotFound(f"payment {request.payment_id} does not exist")
            return found
        return self._find(
            conn,
            (payments.c.bank_code == request.bank_code)
            & (payments.c.bank_txn_id == request.bank_txn_id),
        )

    def _record_reversal(
        self,
        conn: Connection,
        request: ReversalRequest,
        bank_code: str,
        original: str,
        payment_id: str,
        outcome: str,
        now: dt.datetime,
    ) -> None:
        conn.execute(
            reversals.insert().values(
                bank_code=bank_code,
                reversal_txn_id=request.reversal_txn_id,
                original_txn_id=original,
                payment_id=payment_id,
                outcome=outcome,
                amount=request.amount,
                reason=request.reason[:200],
                created_at=now,
            )
        )

    # -- resolving reconciliation differences ---------------------------------------------

    def resolve(self, plan: ResolutionPlan) -> ItemResolution:
        """Carry out an operator's resolution of a report item and store it, in one
        transaction: the ledger entries (actor = the operator) and the resolution row.

        FailedPrecondition when the item was resolved before (naming that resolution),
        or when the ledger changed since the report so the plan no longer fits.
        """
        with self._writing() as conn:
            earlier = resolutions.find(conn, plan.key)
            if earlier is not None:
                raise FailedPrecondition(
                    f"{plan.label()} of report "
                    f"{report_id(plan.key.bank_code, plan.key.settlement_date)} was already "
                    f"resolved: {describe(earlier)}"
                )
            before = self._last_txn(conn)
            payment_id = self._carry_out(conn, plan)
            done = ItemResolution(
                action=plan.action,
                reason=plan.reason,
                operator=plan.operator,
                resolved_at=self.clock(),
                category=plan.category,
                ledger_txn_ids=tuple(
                    conn.execute(
                        sa.select(transactions.c.txn_id)
                        .where(transactions.c.txn_id > before)
                        .order_by(transactions.c.txn_id)
                    ).scalars()
                ),
                payment_id=payment_id,
                written_off=plan.write_off,
            )
            resolutions.insert(conn, plan.key, done)
            return done

    def _carry_out(self, conn: Connection, plan: ResolutionPlan) -> str:
        """Write the plan's ledger entries; returns the payment it concerned."""
        stale = f"{plan.label()}: the ledger changed since the report; reconcile again"
        if plan.post is not None:
            outcome = self._post(conn, [plan.post], actor=plan.operator)[0]
            if isinstance(outcome, PowerbusError):
                raise outcome
            if outcome.duplicate:
                raise FailedPrecondition(
                    f"{stale} (bank txn {plan.post.bank_txn_id} is posted now, as payment "
                    f"{outcome.payment.payment_id})"
                )
            return outcome.payment.payment_id
        current = self._find(
            conn,
            (payments.c.bank_code == plan.key.bank_code)
            & (payments.c.bank_txn_id == plan.key.bank_txn_id),
        )
        seen = (current.amount, current.status) if current is not None else None
        if seen != plan.expected:
            now = (
                f"payment {current.payment_id}, {current.amount} fen, {current.status.value}"
                if current is not None
                else "no payment"
            )
            raise FailedPrecondition(f"{stale} (bank txn {plan.key.bank_txn_id}: {now} now)")
        if plan.reversal is not None:
            self._reverse(conn, plan.reversal, actor=plan.operator)
            return plan.payment_id
        journal = Journal(conn, clock=self.clock)
        journal.add(
            ledger.write_off(bank_code=plan.key.bank_code, amount=plan.write_off),
            payment_id=plan.payment_id,
            memo=f"核销 {plan.key.bank_txn_id}: {plan.reason}",
            actor=plan.operator,
        )
        journal.flush()
        return plan.payment_id

    def resolutions_of(self, bank_code: str, day: dt.date) -> dict[tuple[str, int], ItemResolution]:
        """The stored resolutions of a report, by (bank serial, statement line)."""
        with read_transaction(self.engine) as conn:
            return resolutions.for_report(conn, bank_code, day)

    @staticmethod
    def _last_txn(conn: Connection) -> int:
        top = sa.select(sa.func.coalesce(sa.func.max(transactions.c.txn_id), 0))
        return int(conn.execute(top).scalar_one())

    # -- application to bills ------------------------------------------------------------

    def pending_applications(self, limit: int = 100) -> list[PaymentRecord]:
        """Payments billing has not applied yet, oldest first."""
        return self._flagged(payments.c.application_pending, limit)

    def pending_unapplications(self, limit: int = 100) -> list[PaymentRecord]:
        """Reversed payments billing may still count, oldest first."""
        return self._flagged(payments.c.unapply_pending, limit)

    def _flagged(self, flag: Any, limit: int) -> list[PaymentRecord]:
        query = sa.select(payments).where(flag).order_by(payments.c.seq).limit(limit)
        with read_transaction(self.engine) as conn:
            return [PaymentRecord.from_row(r) for r in conn.execute(query)]

    def record_application(
        self, payment_id: str, *, allocations: bytes, allocated: int, unallocated: int
    ) -> PaymentRecord:
        """Billing applied the payment: store its allocations and post the application.

        Idempotent: a payment no longer pending is left as it is (applied by a racing
        call, or reversed meanwhile, in which case it stays to be unapplied).
        """
        with self._writing() as conn:
            payment = self._one(conn, payment_id)
            if not payment.application_pending or payment.status is PaymentStatus.REVERSED:
                return payment
            if allocated + unallocated != payment.amount:
                raise FailedPrecondition(
                    f"billing applied {allocated} + {unallocated} fen of payment {payment_id}, "
                    f"which is {payment.amount} fen"
                )
            journal = Journal(conn, clock=self.clock)
            journal.add(
                ledger.application(
                    account_id=payment.account_id, allocated=allocated, unallocated=unallocated
                ),
                payment_id=payment_id,
                memo="applied by billing",
            )
            journal.flush()
            conn.execute(
                payments.update()
                .where(payments.c.payment_id == payment_id)
                .values(application_pending=False, allocations=allocations, unallocated=unallocated)
            )
            return self._one(conn, payment_id)

    def record_unapplied(self, payment_id: str) -> None:
        """Billing took the reversed payment off its bills."""
        with self._writing() as conn:
            conn.execute(
                payments.update()
                .where(payments.c.payment_id == payment_id)
                .values(unapply_pending=False)
            )

    # -- reading -------------------------------------------------------------------------

    def get(self, payment_id: str) -> PaymentRecord:
        with read_transaction(self.engine) as conn:
            return self._one(conn, payment_id)

    def find(self, bank_code: str, bank_txn_id: str) -> PaymentRecord | None:
        """The payment of a bank transaction, if it was posted."""
        with read_transaction(self.engine) as conn:
            return self._find(
                conn, (payments.c.bank_code == bank_code) & (payments.c.bank_txn_id == bank_txn_id)
            )

    def list_payments(
        self,
        *,
        account_id: str = "",
        bank_code: str = "",
        settlement_date: dt.date | None = None,
        statuses: Iterable[PaymentStatus] = (),
        offset: int = 0,
        limit: int = 100,
    ) -> list[PaymentRecord]:
        """Payments newest first, by account or by bank (and settlement date)."""
        query = sa.select(payments)
        if account_id:
            query = query.where(payments.c.account_id == account_id)
        if bank_code:
            query = query.where(payments.c.bank_code == bank_code)
        if settlement_date is not None:
            query = query.where(payments.c.settlement_date == settlement_date)
        wanted = [s.value for s in statuses]
        if wanted:
            query = query.where(payments.c.status.in_(wanted))
        query = query.order_by(payments.c.seq.desc()).offset(offset).limit(limit)
        with read_transaction(self.engine) as conn:
            return [PaymentRecord.from_row(r) for r in conn.execute(query)]

    def ledger_entries(
        self, bank_code: str, start: dt.datetime, end: dt.datetime, also: Iterable[str] = ()
    ) -> list[LedgerEntry]:
        """A bank's payments paid in [start, end) or of the serials in ``also``."""
        with read_transaction(self.engine, snapshot=True) as conn:
            # In arrival order, so a rerun lists (and numbers) the same items the same way.
            query = (
                sa.select(payments)
                .where(
                    payments.c.bank_code == bank_code,
                    payments.c.paid_at >= start,
                    payments.c.paid_at < end,
                )
                .order_by(payments.c.seq)
            )
            found = {r.payment_id: PaymentRecord.from_row(r) for r in conn.execute(query)}
            for chunk in chunked(sorted(set(also))):
                query = (
                    sa.select(payments)
                    .where(payments.c.bank_code == bank_code, payments.c.bank_txn_id.in_(chunk))
                    .order_by(payments.c.seq)
                )
                found.update((r.payment_id, PaymentRecord.from_row(r)) for r in conn.execute(query))
        return [p.ledger_entry() for p in found.values()]

    def audit(self) -> Audit:
        """Check the ledger's invariants (see :mod:`.audit`)."""
        with read_transaction(self.engine, snapshot=True) as conn:
            return audit(conn)

    # -- helpers -------------------------------------------------------------------------

    def _writing(self) -> Any:
        return _Writing(self.engine)

    def _find(self, conn: Connection, where: Any) -> PaymentRecord | None:
        row = conn.execute(sa.select(payments).where(where)).first()
        return PaymentRecord.from_row(row) if row is not None else None

    def _one(self, conn: Connection, payment_id: str) -> PaymentRecord:
        found = self._find(conn, payments.c.payment_id == payment_id)
        if found is None:
            raise NotFound(f"payment {payment_id} does not exist")
        return found


class _Writing:
    """A write transaction that on PostgreSQL also takes the store's advisory lock."""

    def __init__(self, engine: Engine) -> None:
        self._context = write_transaction(engine)

    def __enter__(self) -> Connection:
        conn = self._context.__enter__()
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_WRITE_LOCK})
        return conn

    def __exit__(self, *exc: Any) -> None:
        self._context.__exit__(*exc)


def _repeat(found: PaymentRecord, request: PostRequest) -> PostOutcome | PowerbusError:
    if (found.account_id, found.amount) != (request.account_id, request.amount):
        return AlreadyExists(
            "bank_txn_id",
            f"bank {request.bank_code} txn {request.bank_txn_id} was posted for account "
            f"{found.account_id}, {found.amount} fen; now {request.account_id}, "
            f"{request.amount} fen",
        )
    return PostOutcome(found, True)


_ANALYZE_EVERY = 5_000
"""Payments posted before the store has PostgreSQL analyze its tables again, at least."""
