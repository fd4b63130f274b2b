"""The group commit (``PostingQueue``) on a real database: single posts and whole lists
queued together share transactions, and every caller gets exactly its own outcomes, in
its order; stopping refuses only what was never posted."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from powerbus.bus.kernel.database import create_engine
from powerbus.bus.kernel.errors import AlreadyExists, PowerbusError, Unavailable
from powerbus.nodes.payment.batching import PostingQueue
from powerbus.nodes.payment.store.migrations import MIGRATIONS
from powerbus.nodes.payment.store.payments import PaymentStore
from powerbus.nodes.payment.store.records import PostOutcome, PostRequest

NOW = dt.datetime(2026, 12, 4, 1, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_engine(db_url)
    MIGRATIONS.run(engine)
    yield engine
    engine.dispose()


def req(txn: str, amount: int = 1_000) -> PostRequest:
    return PostRequest(
        bank_code="0102",
        bank_txn_id=txn,
        account_id=f"31{int(txn[1:]) % 7:08d}",
        amount=amount,
        channel="PAYMENT_CHANNEL_BANK_COUNTER",
        paid_at=dt.datetime(2026, 12, 4, 9, 30),
    )


async def test_lists_and_single_posts_share_batches_and_each_caller_gets_its_own(
    engine: Engine,
) -> None:
    store = PaymentStore(engine, clock=lambda: NOW)
    queue = PostingQueue(store, batch_size=64)
    await queue.start()
    try:
        lists = [[req(f"L{k * 100 + n}") for n in range(40)] for k in range(5)]
        singles = [req(f"S{n}") for n in range(30)]
        lists[2][7] = req("S3")  # also posted alone: one of the two finds the other's
        lists[4][0] = req("L1", amount=5)  # L1 with other terms
        got = await asyncio.gather(
            *(queue.post_many(part) for part in lists),
            *(queue.post(one) for one in singles),
        )
    finally:
        await queue.stop()
    for part, outcomes in zip(lists, got[: len(lists)], strict=True):
        assert isinstance(outcomes, list) and len(outcomes) == len(part)
        for request, outcome in zip(part, outcomes, strict=True):
            if isinstance(outcome, PowerbusError):
                assert isinstance(outcome, AlreadyExists) and request.bank_txn_id == "L1"
                continue
            assert outcome.payment.bank_txn_id == request.bank_txn_id
    for request, outcome in zip(singles, got[len(lists) :], strict=True):
        assert isinstance(outcome, PostOutcome)
        assert outcome.payment.bank_txn_id == request.bank_txn_id
    both = [o for o in [got[2][7], got[len(lists) + 3]] if isinstance(o, PostOutcome)]
    assert sorted(o.duplicate for o in both) == [False, True]
    assert 1 < queue.batches < len(lists) + len(singles)  # grouped, whole lists kept
    audit = store.audit()
    assert audit.problems == () and audit.payments == 5 * 40 - 2 + 30


async def test_a_stopped_queue_refuses_and_posts_nothing(engine: Engine) -> None:
    store = PaymentStore(engine, clock=lambda: NOW)
    queue = PostingQueue(store, batch_size=64)
    with pytest.raises(Unavailable):
        await queue.post_many([req("S1")])
    await queue.start()
    assert await queue.post_many([]) == []
    await queue.stop()
    with pytest.raises(Unavailable):
        await queue.post(req("S2"))
    assert store.audit().payments == 0
