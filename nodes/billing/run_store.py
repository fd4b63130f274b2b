"""Billing runs in the database: creating one idempotently, reading it, claiming it.

A run's accounts are rows of ``billing_run_accounts`` (pending, then billed, skipped or
failed), so a run that a crash interrupted carries on with the pending ones. Only one node
works a run at a time: it holds a lease (``owner``, ``lease_until``) that it renews with
every batch; a node that died stops renewing and another (or itself, restarted under the
same id) takes the run over once the lease lapses.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from powerbus.bus.kernel.database import read_transaction, write_transaction
from powerbus.bus.kernel.errors import AlreadyExists, NotFound
from powerbus.nodes.billing.store import run_accounts, runs

__all__ = ["RunError", "RunRecord", "RunRequest", "RunState", "RunStore"]

_INSERT_CHUNK = 5000
_ERRORS_SHOWN = 1000


class RunState(str, Enum):
    """``BillingRunState`` values, lower-cased."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"


UNFINISHED = (RunState.PENDING.value, RunState.RUNNING.value)


@dataclass(frozen=True, kw_only=True)
class RunRequest:
    """What StartBillingRun asks for, validated."""

    run_id: str
    start: datetime
    end: datetime
    account_ids: tuple[str, ...]
    due_date: date | None

    def fingerprint(self) -> str:
        """Hash of the parameters: the same run_id must come with the same ones."""
        body = json.dumps(
            [
                self.start.isoformat(),
                self.end.isoformat(),
                sorted(self.account_ids),
                None if self.due_date is None else self.due_date.isoformat(),
            ]
        )
        return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class RunError:
    """Why one account of a run was not billed."""

    account_id: str
    reason: str
    retriable: bool


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """A run's parameters and progress."""

    run_id: str
    start: datetime
    end: datetime
    listed: bool
    due_date: date | None
    state: RunState
    accounts_total: int
    bills_issued: int
    accounts_skipped: int
    accounts_failed: int
    total_billed_fen: int
    total_kwh_milli: int
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    errors: tuple[RunError, ...] = ()
    account_ids: tuple[str, ...] = ()


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=timezone.utc)


def _record(row: Any, errors: Sequence[RunError] = (), accounts: Sequence[str] = ()) -> RunRecord:
    return RunRecord(
        run_id=row.run_id,
        start=_utc(row.period_start) or row.period_start,
        end=_utc(row.period_end) or row.period_end,
        listed=row.listed,
        due_date=row.due_date,
        state=RunState(row.state),
        accounts_total=row.accounts_total,
        bills_issued=row.bills_issued,
        accounts_skipped=row.accounts_skipped,
        accounts_failed=row.accounts_failed,
        total_billed_fen=row.total_billed_fen,
        total_kwh_milli=row.total_kwh_milli,
        error=row.error,
        created_at=_utc(row.created_at) or row.created_at,
        started_at=_utc(row.started_at),
        finished_at=_utc(row.finished_at),
        errors=tuple(errors),
        account_ids=tuple(accounts),
    )


class RunStore:
    """Runs and their accounts in the billing store."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, request: RunRequest) -> tuple[RunRecord, bool]:
        """The run, created if new (``True``) or as it stands; :class:`AlreadyExists`
        when ``run_id`` was used with other parameters."""
        fingerprint = request.fingerprint()
        now = datetime.now(timezone.utc)
        try:
            with write_transaction(self._engine) as conn:
                row = conn.execute(sa.select(runs).where(runs.c.run_id == request.run_id)).first()
                if row is not None:
                    return self._same(row, fingerprint), False
                ids = list(dict.fromkeys(request.account_ids))
                conn.execute(
                    sa.insert(runs).values(
                        run_id=request.run_id,
                        period_start=request.start,
                        period_end=request.end,
                        fingerprint=fingerprint,
                        listed=bool(ids),
                        due_date=request.due_date,
                        state=RunState.PENDING.value,
                        accounts_total=len(ids),
                        bills_issued=0,
                        accounts_skipped=0,
                        accounts_failed=0,
                        total_billed_fen=0,
                        total_kwh_milli=0,
                        created_at=now,
                    )
                )
                for i in range(0, len(ids), _INSERT_CHUNK):
                    conn.execute(
                        sa.insert(run_accounts),
                        [
                            {
                                "run_id": request.run_id,
                                "account_id": a,
                                "state": "pending",
                                "retriable": False,
                            }
                            for a in ids[i : i + _INSERT_CHUNK]
                        ],
                    )
        except sa.exc.IntegrityError:
            # Started twice at once: the other transaction created it.
            with read_transaction(self._engine) as conn:
                row = conn.execute(sa.select(runs).where(runs.c.run_id == request.run_id)).one()
                return self._same(row, fingerprint), False
        return self.get(request.run_id), True

    def list_accounts(self, run_id: str, account_ids: Sequence[str]) -> None:
        """Give a run that named no accounts the ones listed for it, all at once: a run
        crashed while listing lists again; one listed already keeps its list."""
        ids = list(dict.fromkeys(account_ids))
        with write_transaction(self._engine) as conn:
            listed = conn.execute(
                sa.select(runs.c.listed).where(runs.c.run_id == run_id)
            ).scalar_one()
            if listed:
                return
            conn.execute(
                sa.update(runs)
                .where(runs.c.run_id == run_id)
                .values(listed=True, accounts_total=len(ids))
            )
            for i in range(0, len(ids), _INSERT_CHUNK):
                conn.execute(
                    sa.insert(run_accounts),
                    [
                        {"run_id": run_id, "account_id": a, "state": "pending", "retriable": False}
                        for a in ids[i : i + _INSERT_CHUNK]
                    ],
                )

    @staticmethod
    def _same(row: Any, fingerprint: str) -> RunRecord:
        if row.fingerprint != fingerprint:
            raise AlreadyExists(
                "run_id",
                f"{row.run_id!r} was started with other parameters (period, accounts or due date)",
            )
        return _record(row)

    def get(self, run_id: str, *, with_accounts: bool = False) -> RunRecord:
        """A run with (up to 1000 of) its per-account errors; :class:`NotFound`."""
        with read_transaction(self._engine) as conn:
            row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).first()
            if row is None:
                raise NotFound(f"no billing run {run_id!r}")
            failed = conn.execute(
                sa.select(
                    run_accounts.c.account_id, run_accounts.c.reason, run_accounts.c.retriable
                )
                .where(run_accounts.c.run_id == run_id, run_accounts.c.state == "failed")
                .order_by(run_accounts.c.account_id)
                .limit(_ERRORS_SHOWN)
            ).all()
            accounts: list[str] = []
            if with_accounts:
                accounts = list(
                    conn.execute(
                        sa.select(run_accounts.c.account_id).where(run_accounts.c.run_id == run_id)
                    ).scalars()
                )
        return _record(row, [RunError(a, r or "", bool(t)) for a, r, t in failed], accounts)

    def claimable(self, owner: str) -> list[str]:
        """Unfinished runs this node may work: its own, or those whose lease lapsed."""
        now = datetime.now(timezone.utc)
        with read_transaction(self._engine) as conn:
            return list(
                conn.execute(
                    sa.select(runs.c.run_id)
                    .where(runs.c.state.in_(UNFINISHED))
                    .where(
                        runs.c.owner.is_(None)
                        | (runs.c.owner == owner)
                        | (runs.c.lease_until < now)
                    )
                    .order_by(runs.c.created_at)
                ).scalars()
            )

    def claim(self, run_id: str, owner: str, lease: timedelta) -> bool:
        """Take or renew the lease of an unfinished run; ``False`` if another node holds it."""
        now = datetime.now(timezone.utc)
        with write_transaction(self._engine) as conn:
            result = conn.execute(
                sa.update(runs)
                .where(runs.c.run_id == run_id, runs.c.state.in_(UNFINISHED))
                .where(
                    runs.c.owner.is_(None) | (runs.c.owner == owner) | (runs.c.lease_until < now)
                )
                .values(
                    owner=owner,
                    lease_until=now + lease,
                    state=RunState.RUNNING.value,
                    started_at=sa.func.coalesce(runs.c.started_at, now),
                )
            )
            return result.rowcount == 1

    def pending_accounts(self, run_id: str, limit: int, *, after: str = "") -> list[str]:
        """The next ``limit`` accounts of a run not yet done, in account order, after the
        account ``after``."""
        with read_transaction(self._engine) as conn:
            return list(
                conn.execute(
                    sa.select(run_accounts.c.account_id)
                    .where(run_accounts.c.run_id == run_id, run_accounts.c.state == "pending")
                    .where(run_accounts.c.account_id > after)
                    .order_by(run_accounts.c.account_id)
                    .limit(limit)
                ).scalars()
            )
