"""``Payments.PostPayments``: many payments a call through the bus, each recorded as
PostPayment records it, one result per request in order, a refused one failing only
itself; on SQLite and PostgreSQL with a real payment node on a real bus."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import grpc
import pytest
from payment_support import MemoryBilling, make_bills, money, run_node

from powerbus.adapters.bank import PaymentStatus
from powerbus.bus.kernel.database import create_engine
from powerbus.bus.kernel.supervisor import BusHandle
from powerbus.common.v1 import common_pb2
from powerbus.nodes.payment.store.payments import PaymentStore
from powerbus.nodes.sdk import BusChannel
from powerbus.nodes.testing.plugin import NodeFactory
from powerbus.nodes.testing.waiting import eventually
from powerbus.payment.v1 import payment_pb2, payment_pb2_grpc

BANK = "0102"
ACCOUNTS = tuple(f"34{n:08d}" for n in range(1, 11))


def request(serial: str, account_id: str, fen: int) -> payment_pb2.PostPaymentRequest:
    return payment_pb2.PostPaymentRequest(
        bank_code=BANK,
        bank_txn_id=serial,
        account=common_pb2.AccountRef(account_id=account_id),
        amount=money(fen),
        channel=payment_pb2.PAYMENT_CHANNEL_BANK_COUNTER,
    )


@pytest.fixture
async def node(
    bus: BusHandle, node_factory: NodeFactory, db_url: str
) -> AsyncIterator[tuple[payment_pb2_grpc.PaymentsAsyncStub, PaymentStore, MemoryBilling]]:
    billing = MemoryBilling(make_bills(ACCOUNTS))
    runner = await run_node(billing, "billing-1", bus)
    engine = create_engine(db_url)
    try:
        await asyncio.to_thread(
            node_factory, "payment", bus=bus, node_id="payment-1", db=db_url, apply_interval="0.2s"
        )
        store = PaymentStore(engine, clock=lambda: dt.datetime.now(dt.timezone.utc))
        async with BusChannel(target=bus.grpc, caller="bank", default_timeout=30) as ch:
            yield ch.stub(payment_pb2_grpc.PaymentsStub), store, billing
    finally:
        engine.dispose()
        await runner.stop()


async def test_each_payment_of_a_batch_is_posted_once_or_refused_alone(
    node: tuple[payment_pb2_grpc.PaymentsAsyncStub, PaymentStore, MemoryBilling],
) -> None:
    payments, store, billing = node
    await payments.ReversePayment(
        payment_pb2.ReversePaymentRequest(
            bank_transaction=payment_pb2.BankTransactionRef(bank_code=BANK, bank_txn_id="X9"),
            reversal_txn_id="RX9",
        )
    )  # reversed before it arrives: blocked
    batch = [request(f"S{n:04d}", ACCOUNTS[n % len(ACCOUNTS)], 1_000 + n) for n in range(300)]
    batch[10] = request("S0003", ACCOUNTS[3], 1_003)  # a repeat within the batch
    batch[20] = request("S0004", ACCOUNTS[4], 9_999)  # the same serial, other terms
    batch[30] = request("S0030", ACCOUNTS[0], 0)  # not positive
    batch[40] = request("S0040", "3499999999", 500)  # unknown to billing
    batch[50] = request("X9", ACCOUNTS[0], 700)  # blocked by its reversal
    reply = await payments.PostPayments(payment_pb2.PostPaymentsRequest(payments=batch))
    assert len(reply.results) == len(batch)
    refused = {
        i: (payment_pb2.PostRefusal.Name(r.refused.code), r.refused.message)
        for i, r in enumerate(reply.results)
        if r.WhichOneof("result") == "refused"
    }
    assert {i: code for i, (code, _) in refused.items()} == {
        20: "POST_REFUSAL_ALREADY_EXISTS",
        30: "POST_REFUSAL_INVALID_ARGUMENT",
        40: "POST_REFUSAL_NOT_FOUND",
        50: "POST_REFUSAL_FAILED_PRECONDITION",
    }
    assert "amount.fen" in refused[30][1] and "3499999999" in refused[40][1]
    posted = [r.posted for r in reply.results if r.WhichOneof("result") == "posted"]
    assert [p.payment.bank_txn_id for p in posted][:4] == ["S0000", "S0001", "S0002", "S0003"]
    assert reply.results[10].posted.duplicate
    assert reply.results[10].posted.payment.payment_id == reply.results[3].posted.payment.payment_id
    assert sum(not p.duplicate for p in posted) == 295

    again = await payments.PostPayments(payment_pb2.PostPaymentsRequest(payments=batch[:5]))
    assert all(r.posted.duplicate for r in again.results)  # a resent batch changes nothing
    audit = store.audit()
    assert audit.problems == () and audit.payments == 295

    def applied() -> bool:
        return not store.pending_applications()

    await eventually(applied, timeout=30, what="the batch applied to bills")
    live = {
        p.payment_id: (p.account_id, p.amount)
        for p in store.list_payments(bank_code=BANK, limit=1_000)
        if p.status is PaymentStatus.POSTED
    }
    assert len(live) == 295 and billing.check(live) == []


async def test_an_empty_or_oversized_batch_is_refused_whole(
    node: tuple[payment_pb2_grpc.PaymentsAsyncStub, PaymentStore, MemoryBilling],
) -> None:
    payments, store, _ = node
    for size in (0, 1_001):
        batch = [request(f"S{n:05d}", ACCOUNTS[0], 100) for n in range(size)]
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await payments.PostPayments(payment_pb2.PostPaymentsRequest(payments=batch))
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert f"got {size:,}" in (caught.value.details() or "")
    assert store.audit().payments == 0
