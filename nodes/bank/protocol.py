"""The bank's own protocol, answered: a :class:`~powerbus.adapters.bank.CollectionHandler`
that converts each wire request to its BankGateway message and back.

A payment is posted under the header's serial (the bank's 流水号), with the header's
time as when the customer paid; a status query is answered from the ledger only.
"""

from __future__ import annotations

from powerbus.adapters.bank import (
    ArrearsQuery,
    ArrearsReply,
    Header,
    PaymentReply,
    PaymentRequest,
    ReversalReply,
    ReversalRequest,
    ReverseOutcome,
    StatusQuery,
    StatusReply,
)
from powerbus.nodes.bank.collections import Collections
from powerbus.nodes.payment import convert
from powerbus.payment.v1 import payment_pb2

__all__ = ["WireHandler"]

_OUTCOME = {
    payment_pb2.REVERSE_OUTCOME_REVERSED: ReverseOutcome.REVERSED,
    payment_pb2.REVERSE_OUTCOME_ORIGINAL_NOT_FOUND: ReverseOutcome.ORIGINAL_NOT_FOUND,
}


class WireHandler:
    """The bank node's side of the bank protocol (implements ``CollectionHandler``)."""

    def __init__(self, collections: Collections) -> None:
        self._collections = collections

    async def query_arrears(self, header: Header, request: ArrearsQuery) -> ArrearsReply:
        reply = await self._collections.query_arrears(
            payment_pb2.QueryArrearsRequest(
                request_id=header.serial, bank_code=header.bank_code, account_id=request.account_id
            )
        )
        return ArrearsReply(
            account_id=request.account_id,
            customer_name=reply.customer_name_masked,
            total_due=reply.total_due.fen,
            principal=reply.principal.fen,
            late_fee=reply.late_fee.fen,
            credit_balance=reply.credit_balance.fen,
            bill_count=min(len(reply.items), 999),
        )

    async def collect(self, header: Header, request: PaymentRequest) -> PaymentReply:
        collect = payment_pb2.CollectRequest(
            request_id=header.serial,
            bank_code=header.bank_code,
            account_id=request.account_id,
            amount=convert.money(request.amount),
            channel=int(request.channel.value),  # type: ignore[arg-type]
            collected_at=convert.timestamp(header.sent_at),
            settlement_date=convert.date_proto(request.settlement_date),
        )
        reply = await self._collections.collect(collect)
        return PaymentReply(
            account_id=request.account_id,
            amount=reply.amount.fen,
            payment_id=reply.payment_id,
            remaining_due=reply.remaining_due.fen,
            duplicate=reply.duplicate,
        )

    async def reverse(self, header: Header, request: ReversalRequest) -> ReversalReply:
        reply = await self._collections.reverse(
            payment_pb2.ReverseRequest(
                request_id=header.serial,
                original_request_id=request.original_serial,
                bank_code=header.bank_code,
                amount=convert.money(request.amount),
                reason=request.reason,
                reversed_at=convert.timestamp(header.sent_at),
            )
        )
        return ReversalReply(
            original_serial=request.original_serial,
            outcome=_OUTCOME[reply.outcome],
            payment_id=reply.payment_id,
            duplicate=reply.duplicate,
        )

    async def query_status(self, header: Header, request: StatusQuery) -> StatusReply:
        found = await self._collections.state(request.target_serial)
        return StatusReply(
            target_serial=request.target_serial,
            state=found.state,
            account_id=found.account_id,
            amount=found.amount,
        )
