"""Payment's events end to end: a real payment node started with ``--events-in`` on a
real bus; payments posted through the bus (repeats included) and a reversal appear on a
real SDK subscriber once each — a repeated PostPayment or ReversePayment publishes
nothing."""

from __future__ import annotations

import asyncio
import datetime as dt

import grpc

from powerbus.common.v1 import common_pb2
from powerbus.events.v1 import events_pb2
from powerbus.nodes.payment.convert import timestamp
from powerbus.nodes.testing.event_capture import capture
from powerbus.payment.v1 import payment_pb2, payment_pb2_grpc

BANK = "0103"
SERIALS = [f"T{n:04d}" for n in range(1, 9)]
PAID = dt.datetime(2026, 12, 4, 10, 0, tzinfo=dt.timezone.utc)
TIMEOUT = 10.0


def _post(stub: payment_pb2_grpc.PaymentsStub, serial: str) -> payment_pb2.PostPaymentResponse:
    return stub.PostPayment(
        payment_pb2.PostPaymentRequest(
            bank_code=BANK,
            bank_txn_id=serial,
            account=common_pb2.AccountRef(account_id=f"31{serial[1:]:0>8}"),
            amount=common_pb2.Money(fen=1000 + int(serial[1:]), currency="CNY"),
            channel=payment_pb2.PAYMENT_CHANNEL_BANK_COUNTER,
            paid_at=timestamp(PAID),
        ),
        timeout=TIMEOUT,
    )


def test_posted_and_reversed_payments_are_published_once_each(bus, node_factory, db_url):
    node_factory(
        "payment", bus=bus, node_id="payment-1", db=db_url, events_in=bus.state["events_in"]
    )
    with grpc.insecure_channel(bus.grpc) as channel:
        stub = payment_pb2_grpc.PaymentsStub(channel)
        first = {s: _post(stub, s) for s in SERIALS}
        repeats = [_post(stub, s) for s in SERIALS[:3]]
        reverse = payment_pb2.ReversePaymentRequest(
            payment_id=first[SERIALS[0]].payment.payment_id,
            reversal_txn_id="R0001",
            amount=first[SERIALS[0]].payment.amount,
            reason="customer dispute",
        )
        reversed_once = stub.ReversePayment(reverse, timeout=TIMEOUT)
        reversed_again = stub.ReversePayment(reverse, timeout=TIMEOUT)
    assert not any(r.duplicate for r in first.values()) and all(r.duplicate for r in repeats)
    assert not reversed_once.duplicate and reversed_again.duplicate

    def all_in(got):
        return len(got) >= len(SERIALS) + 1

    envelopes = asyncio.run(capture(bus, ["payment."], done=all_in))
    posted = [_unpack(e, events_pb2.PaymentPosted) for e in envelopes if "posted" in e.topic]
    gone = [
        _unpack(e, events_pb2.PaymentReversed) for e in envelopes if e.topic.endswith("reversed")
    ]
    assert len(envelopes) == len(posted) + len(gone)
    assert sorted(p.bank_txn_id for p in posted) == SERIALS
    for event in posted:
        sent = first[event.bank_txn_id].payment
        assert (event.payment_id, event.account.account_id, event.amount.fen) == (
            sent.payment_id,
            sent.account.account_id,
            sent.amount.fen,
        )
        assert event.channel == payment_pb2.PAYMENT_CHANNEL_BANK_COUNTER
        assert event.paid_at.ToDatetime(tzinfo=dt.timezone.utc) == PAID
    (reversal,) = gone
    assert (reversal.payment_id, reversal.reversal_txn_id, reversal.reason) == (
        first[SERIALS[0]].payment.payment_id,
        "R0001",
        "customer dispute",
    )
    assert reversal.amount.fen == first[SERIALS[0]].payment.amount.fen
    assert [e.sequence for e in envelopes] == list(range(1, len(envelopes) + 1))
    assert {e.source for e in envelopes} == {"payment-1"}


def _unpack(envelope, kind):
    message = kind()
    assert envelope.payload.Unpack(message), envelope.topic
    return message
