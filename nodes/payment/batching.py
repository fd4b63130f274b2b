"""Group commit: concurrent posts share one database transaction.

Each PostPayment call queues its request, each PostPayments call its whole list, and
awaits the outcomes; one task takes whatever is queued (whole lists, up to about
``batch_size`` requests), posts it in one transaction in a worker thread, and answers
each caller. Under load that is one commit for hundreds of payments; alone, a request is
posted at once. A list is one queue item and one future however long it is, so a bulk
call costs the event loop one wake-up, not one per payment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from powerbus.bus.kernel.errors import PowerbusError, Unavailable
from powerbus.nodes.payment.store.payments import PaymentStore
from powerbus.nodes.payment.store.records import PostOutcome, PostRequest

__all__ = ["PostingQueue"]

Outcomes = list[PostOutcome | PowerbusError]
_Item = tuple[Sequence[PostRequest], "asyncio.Future[Outcomes]"] | None  # None: stop


class PostingQueue:
    """``await queue.post(request)`` posts it, batched with whatever else is waiting;
    ``await queue.post_many(requests)`` posts a list, in order, as one part of a batch."""

    def __init__(self, store: PaymentStore, *, batch_size: int) -> None:
        self._store = store
        self._batch_size = batch_size
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="payment-posting")

    async def stop(self) -> None:
        """Finish the batch being written (its callers get their answers), then stop;
        callers still queued get UNAVAILABLE (their post never ran). Idempotent."""
        task, self._task = self._task, None
        if task is None:
            return
        self._queue.put_nowait(None)
        try:
            await task
        finally:
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if item is not None and not item[1].done():
                    item[1].set_exception(Unavailable("payment node stopping; post again"))

    async def post(self, request: PostRequest) -> PostOutcome:
        """Post one request; its error (duplicate conflict, blocked serial…) is raised."""
        (outcome,) = await self.post_many([request])
        if isinstance(outcome, PowerbusError):
            raise outcome
        return outcome

    async def post_many(self, requests: Sequence[PostRequest]) -> Outcomes:
        """Post ``requests`` in order; one outcome or error each. UNAVAILABLE (raised)
        when the node stops before they were posted: none of them was."""
        if self._task is None:
            raise Unavailable("payment node is not posting (stopped)")
        if not requests:
            return []
        future: asyncio.Future[Outcomes] = asyncio.get_running_loop().create_future()
        await self._queue.put((requests, future))
        return await future

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            size = len(first[0])
            while size < self._batch_size and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
                size += len(item[0])
            requests = [request for part, _ in batch for request in part]
            try:
                outcomes = await asyncio.to_thread(self._store.post, requests)
            except Exception as exc:
                for _part, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.batches += 1
            start = 0
            for part, future in batch:
                end = start + len(part)
                if not future.done():
                    future.set_result(outcomes[start:end])
                start = end
