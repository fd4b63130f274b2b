"""The ledger store on a real database: idempotent posting, reversals before and after
their originals, application, immutability, and the invariants after every step."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from powerbus.adapters.bank import PaymentStatus, ReverseOutcome
from powerbus.bus.kernel.database import create_engine, write_transaction
from powerbus.bus.kernel.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from powerbus.nodes.payment import ledger
from powerbus.nodes.payment.store.migrations import MIGRATIONS
from powerbus.nodes.payment.store.payments import PaymentStore
from powerbus.nodes.payment.store.records import PostOutcome, PostRequest, ReversalRequest

NOW = dt.datetime(2026, 12, 4, 1, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_engine(db_url)
    MIGRATIONS.run(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine) -> PaymentStore:
    return PaymentStore(engine, clock=lambda: NOW)


def req(txn: str, *, account: str = "3100000001", amount: int = 10_000) -> PostRequest:
    return PostRequest(
        bank_code="0102",
        bank_txn_id=txn,
        account_id=account,
        amount=amount,
        channel="PAYMENT_CHANNEL_BANK_COUNTER",
        paid_at=dt.datetime(2026, 12, 4, 9, 30),
        settlement_date=dt.date(2026, 12, 4),
    )


def post_one(store: PaymentStore, request: PostRequest) -> PostOutcome:
    (outcome,) = store.post([request])
    if not isinstance(outcome, PostOutcome):
        raise outcome
    return outcome


def assert_balanced(store: PaymentStore) -> None:
    audit = store.audit()
    assert audit.problems == () and audit.debits == audit.credits


def test_a_posting_must_balance() -> None:
    with pytest.raises(InvalidArgument, match="debits 5 ≠ credits 4"):
        ledger.Posting(
            ledger.Kind.COLLECTION, (ledger.Line("a", debit=5), ledger.Line("b", credit=4))
        )
    with pytest.raises(InvalidArgument, match="must be positive"):
        ledger.collection(bank_code="0102", account_id="A", amount=0)


def test_a_repeat_returns_the_first_payment_and_other_terms_are_refused(
    store: PaymentStore,
) -> None:
    first = post_one(store, req("T1"))
    again = post_one(store, req("T1"))
    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.payment.payment_id == first.payment.payment_id
    outcomes = store.post([req("T2"), req("T2"), req("T1", amount=9_999)])
    assert [getattr(o, "duplicate", None) for o in outcomes[:2]] == [False, True]
    assert isinstance(outcomes[2], AlreadyExists) and "9999 fen" in str(outcomes[2])
    assert store.audit().payments == 2
    assert_balanced(store)


def test_reversal_after_the_original_nets_every_account_to_zero(store: PaymentStore) -> None:
    payment = post_one(store, req("T1")).payment
    store.record_application(
        payment.payment_id, allocations=b"", allocated=8_000, unallocated=2_000
    )
    assert_balanced(store)
    result = store.reverse(
        ReversalRequest(reversal_txn_id="R1", bank_code="0102", bank_txn_id="T1", amount=10_000)
    )
    assert result.outcome is ReverseOutcome.REVERSED and not result.duplicate
    assert result.payment is not None and result.payment.status is PaymentStatus.REVERSED
    assert result.payment.unapply_pending  # billing must take it off the bills
    assert_balanced(store)
    again = store.reverse(ReversalRequest(reversal_txn_id="R1", bank_code="0102", bank_txn_id="T1"))
    assert again.duplicate and again.outcome is ReverseOutcome.REVERSED
    other = store.reverse(ReversalRequest(reversal_txn_id="R2", payment_id=payment.payment_id))
    assert other.duplicate and other.payment is not None  # already reversed: unchanged
    post_one(store, req("T3"))
    with pytest.raises(AlreadyExists, match="R1 already reversed txn T1"):
        store.reverse(ReversalRequest(reversal_txn_id="R1", bank_code="0102", bank_txn_id="T3"))
    assert_balanced(store)


def test_a_reversal_that_arrives_first_blocks_its_original(store: PaymentStore) -> None:
    result = store.reverse(
        ReversalRequest(reversal_txn_id="R9", bank_code="0102", bank_txn_id="T9", amount=500)
    )
    assert result.outcome is ReverseOutcome.ORIGINAL_NOT_FOUND and result.payment is None
    with pytest.raises(FailedPrecondition, match=r"reversed \(reversal R9\) before it arrived"):
        post_one(store, req("T9", amount=500))
    assert store.find("0102", "T9") is None
    assert_balanced(store)


def test_reversal_guards(store: PaymentStore) -> None:
    payment = post_one(store, req("T1")).payment
    with pytest.raises(FailedPrecondition, match="1 fen differs"):
        store.reverse(
            ReversalRequest(reversal_txn_id="R1", payment_id=payment.payment_id, amount=1)
        )
    with pytest.raises(NotFound, match="payment P-nope"):
        store.reverse(ReversalRequest(reversal_txn_id="R1", payment_id="P-nope"))
    assert store.get(payment.payment_id).status is PaymentStatus.POSTED


def test_application_is_recorded_once_and_must_account_for_the_amount(store: PaymentStore) -> None:
    payment = post_one(store, req("T1")).payment
    assert payment.application_pending
    assert post_one(store, req("T2")).behind_pending  # the account has one waiting
    with pytest.raises(FailedPrecondition, match="billing applied 1 \\+ 2 fen"):
        store.record_application(payment.payment_id, allocations=b"", allocated=1, unallocated=2)
    done = store.record_application(
        payment.payment_id, allocations=b"", allocated=10_000, unallocated=0
    )
    assert not done.application_pending
    store.record_application(payment.payment_id, allocations=b"", allocated=10_000, unallocated=0)
    assert store.audit().transactions == 3  # two collections, one application
    assert [p.bank_txn_id for p in store.pending_applications()] == ["T2"]
    assert_balanced(store)


def test_entries_are_immutable(store: PaymentStore, engine: Engine) -> None:
    post_one(store, req("T1"))
    for statement in ("UPDATE pay_entries SET debit = 1", "DELETE FROM pay_transactions"):
        with (
            pytest.raises(sa.exc.DBAPIError, match="append-only"),
            write_transaction(engine) as conn,
        ):
            conn.exec_driver_sql(statement)
    assert_balanced(store)


def test_concurrent_duplicates_post_once(store: PaymentStore) -> None:
    outcomes: list[PostOutcome] = []
    lock = threading.Lock()

    def post() -> None:
        got = store.post([req("T-race")])
        with lock:
            outcomes.extend(o for o in got if isinstance(o, PostOutcome))

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(o.duplicate for o in outcomes) == [False] + [True] * 7
    assert store.audit().payments == 1
    assert_balanced(store)
