"""One batch of a billing run: pricing its accounts (:func:`price_batch`, no I/O but the
year-to-date look-up) and writing the outcome (:class:`BatchWriter`).

The writer's two transactions are the bill lifecycle's first two steps: drafts inserted
(the unique index decides who bills an account), then issued together with the accounts'
outcome, the run's progress and the ``billing.bill.issued`` events.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from powerbus.bus.kernel.database import conflict_insert, read_transaction, write_transaction
from powerbus.bus.kernel.errors import PowerbusError
from powerbus.nodes.billing.bills import LIVE, BillStatus
from powerbus.nodes.billing.convert import line_to_record
from powerbus.nodes.billing.events import BillingEvents, IssuedBill, RunFinished
from powerbus.nodes.billing.run_store import RunRecord, RunState
from powerbus.nodes.billing.sources import AccountFailure, AccountInfo, MeterUsage
from powerbus.nodes.billing.store import bills, run_accounts, runs
from powerbus.nodes.billing.tariff import (
    TariffCatalogue,
    TierBasis,
    TouPeriod,
    Usage,
    bill_period,
)

__all__ = ["BatchWriter", "Existing", "Outcome", "price_batch"]

MILLI_KWH = Decimal("0.001")

YearToDate = Callable[[Sequence[str], str], dict[str, Decimal]]


@dataclass
class Existing:
    """Bills an account already has for the month."""

    live: dict[str, tuple[str, str, str | None]] = field(default_factory=dict)
    """account → (bill_id, status, run_id) of its bill that is not voided."""
    voided: dict[str, str] = field(default_factory=dict)
    """account → its latest voided bill, which a new bill replaces."""


@dataclass
class Outcome:
    """What a batch decided, before it is written."""

    drafts: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str, bool]] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)


def _failure(outcome: Outcome, account_id: str, reason: str, retriable: bool) -> None:
    outcome.failed.append((account_id, reason, retriable))


def price_batch(
    *,
    run: RunRecord,
    month: str,
    start: datetime,
    end: datetime,
    accounts: Mapping[str, AccountInfo | AccountFailure],
    usage: Mapping[str, MeterUsage | AccountFailure],
    existing: Existing,
    catalogue: TariffCatalogue,
    due_days: int,
    ytd: YearToDate,
) -> Outcome:
    """Price every account of a batch that is not billed yet, or say why not."""
    outcome = Outcome()
    due = run.due_date or (end.date() + timedelta(days=due_days - 1))
    for account_id, (bill_id, status, run_id) in existing.live.items():
        outcome.accounts.append(account_id)
        if not (status == BillStatus.DRAFT.value and run_id == run.run_id):
            outcome.skipped.append((account_id, f"already billed for {month}: {bill_id}"))
    annual = [
        a.account_id
        for a in accounts.values()
        if isinstance(a, AccountInfo) and _annual(catalogue, a.tariff_id, start.date())
    ]
    year_to_date = ytd(annual, month) if annual else {}
    now = datetime.now(timezone.utc)
    for account_id, info in accounts.items():
        outcome.accounts.append(account_id)
        if isinstance(info, AccountFailure):
            _failure(outcome, account_id, info.reason, info.retriable)
            continue
        if not info.active:
            outcome.skipped.append((account_id, "account is not active (closed or pending)"))
            continue
        try:
            row = _price(info, usage, catalogue, start, end, year_to_date.get(account_id))
        except _NotBilled as why:
            _failure(outcome, account_id, why.reason, why.retriable)
            continue
        except PowerbusError as error:
            _failure(outcome, account_id, f"pricing under {info.tariff_id}: {error}", False)
            continue
        row.update(
            bill_id=uuid.uuid4().hex[:20],
            account_id=account_id,
            bill_month=month,
            period_start=start.astimezone(timezone.utc),
            period_end=end.astimezone(timezone.utc),
            status=BillStatus.DRAFT.value,
            paid_fen=0,
            run_id=run.run_id,
            created_at=now,
            due_date=due,
            replaces_bill_id=existing.voided.get(account_id),
        )
        outcome.drafts.append(row)
    return outcome


def _annual(catalogue: TariffCatalogue, tariff_id: str, day: date) -> bool:
    try:
        return catalogue.version(tariff_id, day).tier_basis is TierBasis.ANNUAL
    except PowerbusError:
        return False


class _NotBilled(Exception):
    def __init__(self, reason: str, retriable: bool) -> None:
        super().__init__(reason)
        self.reason, self.retriable = reason, retriable


def _price(
    info: AccountInfo,
    usage: Mapping[str, MeterUsage | AccountFailure],
    catalogue: TariffCatalogue,
    start: datetime,
    end: datetime,
    year_to_date: Decimal | None,
) -> dict[str, Any]:
    if not info.meter_ids:
        raise _NotBilled("account has no meter", False)
    versions = catalogue.versions(info.tariff_id)
    tou = catalogue.version(info.tariff_id, start.date()).is_tou
    kwh, reactive, demand = Decimal(0), Decimal(0), Decimal(0)
    split: dict[TouPeriod, Decimal] = {}
    estimated = False
    for meter_id in info.meter_ids:
        found = usage.get(meter_id)
        if found is None:
            raise _NotBilled(f"metering: no usage of meter {meter_id}", True)
        if isinstance(found, AccountFailure):
            raise _NotBilled(found.reason, found.retriable)
        if not found.complete:
            # Short totals would under-bill; a later run bills once VEE has filled them.
            raise _NotBilled(f"metering: usage of meter {meter_id} is incomplete", True)
        kwh += found.kwh
        reactive += found.reactive_kvarh
        demand = max(demand, found.max_demand_kw)
        estimated = estimated or found.estimated
        for period, value in found.tou_kwh.items():
            split[period] = split.get(period, Decimal(0)) + value
    # A TOU tariff prices the split (kwh 0: the split's sum is the total, so window
    # rounding cannot disagree with it); any other prices the total.
    used = Usage(
        kwh=Decimal(0) if tou and split else kwh,
        tou_kwh=split if tou else {},
        year_to_date_kwh=year_to_date or Decimal(0),
        tier_allowance_kwh=info.tier_allowance_kwh,
        demand_basis=info.demand_basis,
        max_demand_kw=demand,
        contract_demand_kw=info.contract_demand_kw,
        capacity_kva=info.capacity_kva,
        reactive_kvarh=reactive,
        power_factor_standard=info.power_factor_standard,
    )
    bill = bill_period(versions, used, start=start.date(), end=end.date())
    return {
        "customer_class": versions[-1].customer_class.value,
        "tariff_id": info.tariff_id,
        "total_fen": bill.total_fen,
        "kwh_milli": int(bill.kwh / MILLI_KWH),
        "determinants": {
            "tou_kwh": {p.value: str(v) for p, v in used.tou_kwh.items()},
            "max_demand_kw": str(demand),
            "reactive_kvarh": str(reactive),
            "power_factor": None if bill.power_factor is None else str(bill.power_factor),
            "year_to_date_kwh": str(used.year_to_date_kwh),
            "estimated": estimated,
        },
        "lines": [line_to_record(line) for line in bill.lines],
    }


def _insert_ignoring_conflicts(conn: Connection) -> Any:
    # The partial unique index decides; ON CONFLICT without a target covers it on both.
    return conflict_insert(conn, bills).on_conflict_do_nothing()


class BatchWriter:
    """The database side of a batch and of finishing a run."""

    def __init__(self, engine: Engine, events: BillingEvents) -> None:
        self._engine = engine
        self._events = events

    def existing(self, run_id: str, month: str, account_ids: Sequence[str]) -> Existing:
        """Bills the accounts have for ``month`` already."""
        found = Existing()
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                sa.select(bills.c.account_id, bills.c.bill_id, bills.c.status, bills.c.run_id)
                .where(bills.c.bill_month == month, bills.c.account_id.in_(account_ids))
                .order_by(bills.c.voided_at)
            )
            for account_id, bill_id, status, run_id in rows:
                if status == BillStatus.VOIDED.value:
                    found.voided[account_id] = bill_id
                else:
                    found.live[account_id] = (bill_id, status, run_id)
        return found

    def year_to_date(self, account_ids: Sequence[str], month: str) -> dict[str, Decimal]:
        """kWh billed this calendar year before ``month``, per account (annual tiers)."""
        with read_transaction(self._engine) as conn:
            rows = conn.execute(
                sa.select(bills.c.account_id, sa.func.sum(bills.c.kwh_milli))
                .where(
                    bills.c.account_id.in_(account_ids),
                    bills.c.bill_month >= f"{month[:4]}-01",
                    bills.c.bill_month < month,
                    bills.c.status.in_([s.value for s in LIVE]),
                )
                .group_by(bills.c.account_id)
            )
            return {a: Decimal(int(milli)) * MILLI_KWH for a, milli in rows}

    def write(self, run_id: str, outcome: Outcome) -> None:
        """Insert the drafts, then issue this run's drafts of the batch and record every
        account's outcome and the run's progress."""
        if outcome.drafts:
            with write_transaction(self._engine) as conn:
                conn.execute(_insert_ignoring_conflicts(conn), outcome.drafts)
        now = datetime.now(timezone.utc)
        with write_transaction(self._engine) as conn:
            ours = conn.execute(
                sa.select(
                    bills.c.bill_id,
                    bills.c.account_id,
                    bills.c.total_fen,
                    bills.c.kwh_milli,
                    bills.c.bill_month,
                    bills.c.due_date,
                ).where(
                    bills.c.run_id == run_id,
                    bills.c.status == BillStatus.DRAFT.value,
                    bills.c.account_id.in_(outcome.accounts),
                )
            ).all()
            issued = {r.account_id for r in ours}
            raced = [
                (d["account_id"], "billed by another run meanwhile")
                for d in outcome.drafts
                if d["account_id"] not in issued
            ]
            if ours:
                conn.execute(
                    sa.update(bills)
                    .where(bills.c.bill_id.in_([r.bill_id for r in ours]))
                    .values(status=BillStatus.ISSUED.value, issued_at=now)
                )
            states = (
                [
                    {"a": r.account_id, "s": "billed", "r": None, "t": False, "b": r.bill_id}
                    for r in ours
                ]
                + [
                    {"a": a, "s": "skipped", "r": why, "t": False, "b": None}
                    for a, why in [*outcome.skipped, *raced]
                ]
                + [
                    {"a": a, "s": "failed", "r": why, "t": t, "b": None}
                    for a, why, t in outcome.failed
                ]
            )
            if states:
                conn.execute(
                    sa.update(run_accounts)
                    .where(
                        run_accounts.c.run_id == run_id,
                        run_accounts.c.account_id == sa.bindparam("a"),
                    )
                    .values(
                        state=sa.bindparam("s"),
                        reason=sa.bindparam("r"),
                        retriable=sa.bindparam("t"),
                        bill_id=sa.bindparam("b"),
                    ),
                    states,
                )
            conn.execute(
                sa.update(runs)
                .where(runs.c.run_id == run_id)
                .values(
                    bills_issued=runs.c.bills_issued + len(ours),
                    accounts_skipped=runs.c.accounts_skipped + len(outcome.skipped) + len(raced),
                    accounts_failed=runs.c.accounts_failed + len(outcome.failed),
                    total_billed_fen=runs.c.total_billed_fen + sum(r.total_fen for r in ours),
                    total_kwh_milli=runs.c.total_kwh_milli + sum(r.kwh_milli for r in ours),
                )
            )
            self._events.bills_issued(
                conn,
                [
                    IssuedBill(
                        bill_id=r.bill_id,
                        account_id=r.account_id,
                        bill_month=r.bill_month,
                        total_fen=r.total_fen,
                        due_date=r.due_date,
                        run_id=run_id,
                        kwh_milli=r.kwh_milli,
                    )
                    for r in ours
                ],
            )

    def finish(self, run_id: str, error: str | None = None) -> None:
        """Write the run's final state (and ``billing.run.finished``) in one transaction."""
        with write_transaction(self._engine) as conn:
            row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).one()
            if row.accounts_failed == 0 and error is None:
                state = RunState.SUCCEEDED
            elif row.bills_issued or row.accounts_skipped:
                state = RunState.PARTIAL
            else:
                state = RunState.FAILED
            conn.execute(
                sa.update(runs)
                .where(runs.c.run_id == run_id)
                .values(
                    state=state.value,
                    error=error,
                    finished_at=datetime.now(timezone.utc),
                    owner=None,
                    lease_until=None,
                )
            )
            self._events.run_finished(
                conn,
                RunFinished(
                    run_id=run_id,
                    state=state.value,
                    accounts_total=row.accounts_total,
                    bills_issued=row.bills_issued,
                    accounts_skipped=row.accounts_skipped,
                    accounts_failed=row.accounts_failed,
                    total_billed_fen=row.total_billed_fen,
                ),
            )

    def abandon(self, run: RunRecord, reason: str) -> None:
        """Stop a run that cannot go on: its pending accounts fail (retriable) with
        ``reason`` and the run ends FAILED, or PARTIAL if it billed some already."""
        with write_transaction(self._engine) as conn:
            pending = (run_accounts.c.run_id == run.run_id) & (run_accounts.c.state == "pending")
            count = conn.execute(
                sa.select(sa.func.count()).select_from(run_accounts).where(pending)
            ).scalar_one()
            conn.execute(
                sa.update(run_accounts)
                .where(pending)
                .values(state="failed", reason=reason, retriable=True)
            )
            conn.execute(
                sa.update(runs)
                .where(runs.c.run_id == run.run_id)
                .values(accounts_failed=runs.c.accounts_failed + count)
            )
        self.finish(run.run_id, reason)
