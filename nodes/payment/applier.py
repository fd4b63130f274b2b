"""The background loop that applies pending payments to bills, in order, and takes
reversed ones off again, whenever billing can be reached.

Order: pending payments are taken by arrival (``seq``); when one cannot be applied
because billing is down the round stops, so no later payment of any account overtakes
it. A payment billing refuses for good (an unknown account, say) is logged and stays
pending for an operator, and the rest of that account waits behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

from powerbus.bus.kernel.errors import PowerbusError
from powerbus.nodes.payment.billing import BillingCalls, is_down
from powerbus.nodes.payment.store.payments import PaymentStore
from powerbus.nodes.payment.store.records import PaymentRecord

__all__ = ["Applier"]

log = logging.getLogger(__name__)


class Applier:
    """Owns one task; :meth:`kick` wakes it early, :meth:`stop` ends it (idempotent).

    >>> # applier = Applier(store, billing, interval=dt.timedelta(seconds=1))
    >>> # await applier.start(); applier.kick(); await applier.stop()
    """

    def __init__(
        self, store: PaymentStore, billing: BillingCalls, *, interval: dt.timedelta
    ) -> None:
        self._store = store
        self._billing = billing
        self._interval = interval.total_seconds()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0
        self.billing_down = False
        """Whether the last round found billing down; kicks then wait for the interval."""

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="payment-applier")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def kick(self) -> None:
        """Run a round now (a payment went pending, or billing answered again)."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            if self.billing_down:
                # Kicks cannot make billing come back: retry on the interval, not per post.
                await asyncio.sleep(self._interval)
            else:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
            self._wake.clear()
            try:
                await self.run_once()
            except Exception:  # a bug must not end the loop that keeps money moving
                log.exception("application round failed")

    async def run_once(self) -> int:
        """One round: apply what is pending, then unapply what was reversed. Returns how
        many payments it settled with billing."""
        self.rounds += 1
        self.billing_down = False
        done = await self._apply_pending()
        done += await self._unapply_reversed()
        return done

    async def _apply_pending(self) -> int:
        done = 0
        held: set[str] = set()
        while True:
            batch = await asyncio.to_thread(self._store.pending_applications, 100)
            progress = False
            for payment in batch:
                if payment.account_id in held:
                    continue
                outcome = await self.apply(payment)
                if outcome is None:
                    self.billing_down = True
                    return done  # billing is down: keep the order, try again later
                if outcome:
                    done += 1
                    progress = True
                else:
                    held.add(payment.account_id)
            if not progress or len(batch) < 100:
                return done

    async def apply(self, payment: PaymentRecord) -> bool | None:
        """Apply one payment: True when applied, None when billing is down, False when
        billing refused it for good."""
        try:
            applied = await self._billing.apply(payment)
        except PowerbusError as exc:
            if is_down(exc):
                return None
            log.error("billing refused payment %s: %s", payment.payment_id, exc)
            return False
        await asyncio.to_thread(
            self._store.record_application,
            payment.payment_id,
            allocations=applied.response.SerializeToString(),
            allocated=applied.allocated,
            unallocated=applied.unallocated,
        )
        return True

    async def _unapply_reversed(self) -> int:
        done = 0
        for payment in await asyncio.to_thread(self._store.pending_unapplications, 100):
            try:
                await self._billing.unapply(payment)
            except PowerbusError as exc:
                if is_down(exc):
                    self.billing_down = True
                    return done
                log.error("billing refused to unapply %s: %s", payment.payment_id, exc)
                continue
            await asyncio.to_thread(self._store.record_unapplied, payment.payment_id)
            done += 1
        return done
