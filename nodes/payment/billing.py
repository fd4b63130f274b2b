"""The payment node's calls to billing, each with a deadline, failures as powerbus errors.

"Billing is down" is any of UNAVAILABLE, DEADLINE_EXCEEDED, or UNIMPLEMENTED (the bus
knows no billing node at all): the payment is kept pending and applied later.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass
from typing import Any

import grpc

from powerbus.billing.v1 import billing_pb2
from powerbus.bus.kernel.errors import (
    DeadlineExceeded,
    NotFound,
    PowerbusError,
    Unavailable,
    Unimplemented,
    error_from_status,
)
from powerbus.bus.transport.grpc_status import from_grpc
from powerbus.common.v1 import common_pb2
from powerbus.nodes.payment.store.records import PaymentRecord

__all__ = ["Applied", "BillingCalls", "is_down", "rpc_error"]


def rpc_error(exc: grpc.aio.AioRpcError) -> PowerbusError:
    """A failed call as the powerbus error of its status."""
    return error_from_status(from_grpc(exc.code()), exc.details() or "")


def is_down(error: PowerbusError) -> bool:
    """Whether the error means billing could not be reached (try again later)."""
    return isinstance(error, (Unavailable, DeadlineExceeded, Unimplemented))


@dataclass(frozen=True, slots=True)
class Applied:
    """Billing's answer to ApplyPayment, fen."""

    response: billing_pb2.ApplyPaymentResponse
    allocated: int
    unallocated: int


class BillingCalls:
    """ApplyPayment, UnapplyPayment and GetArrears on ``stub`` (a BillingStub)."""

    def __init__(self, stub: Any, *, timeout: dt.timedelta) -> None:
        self._stub = stub
        self._timeout = timeout.total_seconds()

    async def apply(self, payment: PaymentRecord) -> Applied:
        request = billing_pb2.ApplyPaymentRequest(
            payment_id=payment.payment_id,
            account=common_pb2.AccountRef(account_id=payment.account_id),
            amount=common_pb2.Money(fen=payment.amount, currency="CNY"),
            bill_ids=list(payment.bill_ids),
        )
        request.paid_at.FromDatetime(payment.paid_at.astimezone(dt.timezone.utc))
        response: billing_pb2.ApplyPaymentResponse = await self._call(
            self._stub.ApplyPayment, request
        )
        allocated = sum(a.amount.fen for a in response.allocations)
        return Applied(response, allocated, response.unallocated.fen)

    async def unapply(self, payment: PaymentRecord) -> None:
        """Take a reversed payment off its bills; never applied counts as done."""
        request = billing_pb2.UnapplyPaymentRequest(
            payment_id=payment.payment_id,
            reason=f"冲正 {payment.reversal_txn_id} by bank {payment.bank_code}",
        )
        with contextlib.suppress(NotFound):
            await self._call(self._stub.UnapplyPayment, request)

    async def arrears(self, account_id: str) -> billing_pb2.Arrears:
        request = billing_pb2.GetArrearsRequest(
            account=common_pb2.AccountRef(account_id=account_id)
        )
        arrears: billing_pb2.Arrears = await self._call(self._stub.GetArrears, request)
        return arrears

    async def _call(self, method: Any, request: Any) -> Any:
        try:
            return await method(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise rpc_error(exc) from None
        except PowerbusError:
            raise
