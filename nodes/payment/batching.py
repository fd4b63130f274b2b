"""Group commit: concurrent posts share one database transaction.

Each PostPayment call queues its request and awaits its own outcome; one task takes
whatever is queued (up to ``batch_size``), posts it in one transaction in a worker
thread, and answers each caller. Under load that is one commit for hundreds of
payments; alone, a request is posted at once.
"""

from __future__ import annotations

import asyncio

from powerbus.bus.kernel.errors import PowerbusError, Unavailable
from powerbus.nodes.payment.store.payments import PaymentStore
from powerbus.nodes.payment.store.records import PostOutcome, PostRequest

__all__ = ["PostingQueue"]

_Item = tuple[PostRequest, "asyncio.Future[PostOutcome]"] | None  # None: stop


class PostingQueue:
    """``await queue.post(request)`` posts it, batched with whatever else is waiting."""

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
        if self._task is None:
            raise Unavailable("payment node is not posting (stopped)")
        future: asyncio.Future[PostOutcome] = asyncio.get_running_loop().create_future()
        await self._queue.put((request, future))
        return await future

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self._batch_size and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            try:
                outcomes = await asyncio.to_thread(
                    self._store.post, [request for request, _ in batch]
                )
            except Exception as exc:
                for _request, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.batches += 1
            for (_request, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if isinstance(outcome, PowerbusError):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
