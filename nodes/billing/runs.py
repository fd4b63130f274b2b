"""Billing runs: every account of a period read from CRM, its usage from metering, priced
and issued, in batches, resumable, never billing an account twice.

Why it cannot bill twice: a bill is first inserted as a draft with ``ON CONFLICT DO
NOTHING`` against the partial unique index on (account, month, not voided), so whichever
run or node gets there first wins and the other sees the account as billed; then the
drafts are issued in the transaction that records the accounts as done and the run's
progress. A crash between the two leaves drafts that the resumed run finds and issues; a
crash before leaves pending accounts that it bills. A run with the same ``run_id`` is the
same run (:class:`~powerbus.nodes.billing.run_store.RunStore`).

Each node owns one sweeper task that picks up runs it may work (its own, new ones, and
those whose owner's lease lapsed) and one task per run it works; :meth:`BillingRuns.stop`
cancels and awaits them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from powerbus.bus.kernel.errors import InvalidArgument, PowerbusError, Unavailable
from powerbus.nodes.billing.billing_batch import BatchWriter, Existing, Outcome, price_batch
from powerbus.nodes.billing.events import BillingEvents
from powerbus.nodes.billing.run_store import RunRecord, RunRequest, RunStore
from powerbus.nodes.billing.settings import BillingSettings
from powerbus.nodes.billing.sources import (
    AccountFailure,
    AccountInfo,
    AccountSource,
    MeterUsage,
    SourceMissing,
    UsageSource,
)
from powerbus.nodes.billing.tariff import TariffCatalogue, TariffNotFound
from powerbus.nodes.billing.tariff_book import TariffBook

__all__ = ["BillingRuns", "local_period"]

log = logging.getLogger(__name__)


@dataclass
class _Read:
    """A batch's accounts with what was read for them."""

    ids: list[str]
    existing: Existing
    accounts: dict[str, AccountInfo | AccountFailure]
    usage: dict[str, MeterUsage | AccountFailure]
    seconds: float


def _month(start: datetime) -> str:
    return f"{start.year:04d}-{start.month:02d}"


def local_period(start: datetime, end: datetime, zone: str) -> tuple[datetime, datetime]:
    """Validate a run's period: ``[start, end)`` at local midnights inside one calendar
    month (a month, or part of one for a move-in or move-out)."""
    tz = ZoneInfo(zone)
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    if not start < end:
        raise InvalidArgument("period", f"empty or reversed: [{start}, {end})")
    for name, moment in (("start", local_start), ("end", local_end)):
        if moment.time() != datetime.min.time():
            raise InvalidArgument(
                f"period.{name}", f"must be local midnight ({zone}), not {moment}"
            )
    first = local_start.date()
    last = (local_end - timedelta(days=1)).date()
    if (first.year, first.month) != (last.year, last.month):
        raise InvalidArgument("period", f"[{first}, {local_end.date()}) spans more than one month")
    return local_start, local_end


class BillingRuns:
    """Starts, resumes and reports billing runs for one node."""

    def __init__(
        self,
        *,
        engine: Engine,
        book: TariffBook,
        accounts: AccountSource,
        usage: UsageSource,
        events: BillingEvents,
        settings: BillingSettings,
        owner: str,
    ) -> None:
        self._store = RunStore(engine)
        self._writer = BatchWriter(engine, events)
        self._book = book
        self._accounts = accounts
        self._usage = usage
        self._settings = settings
        self._owner = owner
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def start(self) -> None:
        """Start the sweeper, which resumes unfinished runs at once."""
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep(), name="billing-run-sweeper")

    async def stop(self) -> None:
        """Cancel the sweeper and every run in progress (they resume on the next start).
        Idempotent."""
        tasks = [t for t in (self._sweeper, *self._workers.values()) if t is not None]
        self._sweeper = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._workers.clear()

    async def begin(self, request: RunRequest) -> RunRecord:
        """StartBillingRun: create the run (or find it) and have it worked."""
        if not request.run_id:
            raise InvalidArgument("run_id", "must not be empty")
        local_period(request.start, request.end, self._settings.time_zone)
        record, _created = await asyncio.to_thread(self._store.create, request)
        self._wake.set()
        return record

    async def get(self, run_id: str) -> RunRecord:
        """GetBillingRun."""
        if not run_id:
            raise InvalidArgument("run_id", "must not be empty")
        return await asyncio.to_thread(self._store.get, run_id)

    async def _sweep(self) -> None:
        interval = self._settings.run_lease.total_seconds() / 3
        while True:
            # Cleared before looking, so a run begun during the look wakes the next one.
            self._wake.clear()
            try:
                for run_id in await asyncio.to_thread(self._store.claimable, self._owner):
                    if run_id not in self._workers:
                        task = asyncio.create_task(self._work(run_id), name=f"billing-run-{run_id}")
                        self._workers[run_id] = task
                        task.add_done_callback(self._forget)
            except Exception:  # a database hiccup must not end the sweeper
                log.exception("billing run sweep failed; trying again")
            # asyncio's, which is not the builtin TimeoutError before Python 3.11.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)

    def _forget(self, task: asyncio.Task[None]) -> None:
        for run_id, worker in list(self._workers.items()):
            if worker is task:
                del self._workers[run_id]

    async def _work(self, run_id: str) -> None:
        try:
            await self._run(run_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("billing run %s stopped; it resumes when its lease lapses", run_id)

    async def _run(self, run_id: str) -> None:
        lease = self._settings.run_lease
        if not await asyncio.to_thread(self._store.claim, run_id, self._owner, lease):
            return
        run = await asyncio.to_thread(self._store.get, run_id)
        if not run.listed:  # named no accounts: every account CRM bills, listed once
            try:
                listed = await self._accounts.all_billable()
            except SourceMissing as missing:
                await asyncio.to_thread(self._writer.abandon, run, str(missing))
                return
            except Unavailable as error:
                log.warning("billing run %s: listing accounts: %s; retried later", run_id, error)
                return  # the lease lapses and the sweeper tries again
            except PowerbusError as error:
                await asyncio.to_thread(self._writer.abandon, run, f"listing accounts: {error}")
                return
            await asyncio.to_thread(self._store.list_accounts, run_id, listed)
            run = await asyncio.to_thread(self._store.get, run_id)
        start, end = local_period(run.start, run.end, self._settings.time_zone)
        catalogue = await asyncio.to_thread(self._book.catalogue)
        log.info("billing run %s: %d accounts from %s", run_id, run.accounts_total, start.date())
        # Reading batch N+1 (CRM, metering) overlaps pricing and writing batch N.
        ids = await self._pending(run_id)
        reading = self._start_read(run, ids, start, end, catalogue)
        try:
            while reading is not None:
                if not await asyncio.to_thread(self._store.claim, run_id, self._owner, lease):
                    log.warning("billing run %s: lease lost to another node", run_id)
                    return
                batch = await reading
                ids = await self._pending(run_id, after=batch.ids[-1])
                if not ids:  # the end, or accounts left behind earlier: from the top
                    ids = [a for a in await self._pending(run_id) if a not in set(batch.ids)]
                reading = self._start_read(run, ids, start, end, catalogue)
                await self._finish_batch(run, batch, start, end, catalogue)
        except SourceMissing as missing:
            await asyncio.to_thread(self._writer.abandon, run, str(missing))
            return
        finally:
            if reading is not None:
                reading.cancel()
                await asyncio.gather(reading, return_exceptions=True)
        await asyncio.to_thread(self._writer.finish, run_id)

    async def _pending(self, run_id: str, *, after: str = "") -> list[str]:
        return await asyncio.to_thread(
            self._store.pending_accounts, run_id, self._settings.batch_size, after=after
        )

    def _start_read(
        self,
        run: RunRecord,
        ids: Sequence[str],
        start: datetime,
        end: datetime,
        catalogue: TariffCatalogue,
    ) -> asyncio.Task[_Read] | None:
        if not ids:
            return None
        return asyncio.create_task(self._read(run, ids, start, end, catalogue))

    async def _read(
        self,
        run: RunRecord,
        ids: Sequence[str],
        start: datetime,
        end: datetime,
        catalogue: TariffCatalogue,
    ) -> _Read:
        """Everything a batch needs from outside: existing bills, accounts, usage."""
        began = time.perf_counter()
        existing = await asyncio.to_thread(self._writer.existing, run.run_id, _month(start), ids)
        to_read = [a for a in ids if a not in existing.live]
        accounts = await self._accounts.accounts(to_read) if to_read else {}
        usage = await self._read_usage(accounts, start, end, catalogue)
        return _Read(list(ids), existing, accounts, usage, time.perf_counter() - began)

    async def _finish_batch(
        self,
        run: RunRecord,
        batch: _Read,
        start: datetime,
        end: datetime,
        catalogue: TariffCatalogue,
    ) -> None:
        began = time.perf_counter()
        outcome: Outcome = await asyncio.to_thread(
            price_batch,
            run=run,
            month=_month(start),
            start=start,
            end=end,
            accounts=batch.accounts,
            usage=batch.usage,
            existing=batch.existing,
            catalogue=catalogue,
            due_days=self._settings.due_days,
            ytd=self._writer.year_to_date,
        )
        priced = time.perf_counter()
        await asyncio.to_thread(self._writer.write, run.run_id, outcome)
        log.debug(
            "billing run %s: batch of %d: reading %.3fs (overlapped), pricing %.3fs, writing %.3fs",
            run.run_id,
            len(batch.ids),
            batch.seconds,
            priced - began,
            time.perf_counter() - priced,
        )

    async def _read_usage(
        self,
        accounts: Mapping[str, AccountInfo | AccountFailure],
        start: datetime,
        end: datetime,
        catalogue: TariffCatalogue,
    ) -> dict[str, MeterUsage | AccountFailure]:
        """Usage of every meter of the active accounts, one SummarizeUsage series per
        tariff (each tariff its own TOU windows)."""
        by_tariff: dict[str, list[str]] = {}
        for info in accounts.values():
            if isinstance(info, AccountInfo) and info.active:
                by_tariff.setdefault(info.tariff_id, []).extend(info.meter_ids)
        found: dict[str, MeterUsage | AccountFailure] = {}
        for tariff_id, meters in by_tariff.items():
            try:
                version = catalogue.version(tariff_id, start.date())
            except TariffNotFound:
                continue  # priced as a failure of each account
            found.update(
                await self._usage.usage(
                    meters,
                    start=start.astimezone(timezone.utc),
                    end=end.astimezone(timezone.utc),
                    windows=version.tou_windows,
                    time_zone=self._settings.time_zone,
                )
            )
        return found
