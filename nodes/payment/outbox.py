"""Payment's events in the SDK outbox: ``payment.payment.posted`` and
``payment.payment.reversed`` as protos/powerbus/events/v1/events.proto defines them,
staged on the transaction that records the money, so they commit with it or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Connection

from powerbus.common.v1 import common_pb2
from powerbus.events.v1 import events_pb2
from powerbus.nodes.payment.convert import date_proto, money, timestamp
from powerbus.nodes.payment.store.payments import EventSink
from powerbus.nodes.payment.store.records import PaymentRecord
from powerbus.nodes.sdk.events import Outbox
from powerbus.payment.v1 import payment_pb2

__all__ = ["OutboxSink"]


class OutboxSink(EventSink):
    """The payment store's :class:`EventSink` written to ``outbox``."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def posted(self, conn: Connection, payment: PaymentRecord) -> None:
        """Stage ``payment.payment.posted`` on ``conn`` (new payments only)."""
        self.outbox.add(conn, _posted(payment))

    def posted_many(self, conn: Connection, payments: Sequence[PaymentRecord]) -> None:
        """Stage a batch's ``payment.payment.posted`` events in one go."""
        self.outbox.add_many(conn, [_posted(p) for p in payments])

    def reversed(self, conn: Connection, payment: PaymentRecord) -> None:
        """Stage ``payment.payment.reversed`` on ``conn``."""
        event = events_pb2.PaymentReversed(
            payment_id=payment.payment_id,
            account=common_pb2.AccountRef(account_id=payment.account_id),
            amount=money(payment.amount),
            bank_code=payment.bank_code,
            bank_txn_id=payment.bank_txn_id,
            reversal_txn_id=payment.reversal_txn_id,
            reason=payment.reversal_reason,
        )
        if payment.reversed_at is not None:
            event.reversed_at.CopyFrom(timestamp(payment.reversed_at))
        self.outbox.add(conn, event)


def _posted(payment: PaymentRecord) -> events_pb2.PaymentPosted:
    event = events_pb2.PaymentPosted(
        payment_id=payment.payment_id,
        account=common_pb2.AccountRef(account_id=payment.account_id),
        amount=money(payment.amount),
        bank_code=payment.bank_code,
        bank_txn_id=payment.bank_txn_id,
        channel=payment_pb2.PaymentChannel.Value(payment.channel),
        paid_at=timestamp(payment.paid_at),
    )
    if payment.settlement_date is not None:
        event.settlement_date.CopyFrom(date_proto(payment.settlement_date))
    return event
