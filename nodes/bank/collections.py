"""A bank's collections in bus form: BankGateway's QueryArrears, Collect and Reverse
answered through Billing and Payments, and the status of a transaction read from the
ledger. The gRPC servicer and the bank-protocol handler both delegate here.

Every call has a deadline; a failure comes back as the powerbus error of its status, so
the bank is told ``9098`` (unavailable: resend or reverse) when payments cannot be
reached, never a guess.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import grpc

from powerbus.adapters.bank import TxnState
from powerbus.billing.v1 import billing_pb2
from powerbus.bus.kernel.errors import InvalidArgument, NotFound, PowerbusError
from powerbus.common.v1 import common_pb2
from powerbus.nodes.payment.billing import rpc_error
from powerbus.nodes.payment.convert import money
from powerbus.payment.v1 import payment_pb2

__all__ = ["Collections", "LedgerState"]


class LedgerState:
    """A transaction's state as the ledger holds it: (state, account, amount)."""

    def __init__(self, state: TxnState, account_id: str = "", amount: int = 0) -> None:
        self.state, self.account_id, self.amount = state, account_id, amount


class Collections:
    """Bank ``bank_code``'s collections through ``payments`` and ``billing`` (bus stubs)."""

    def __init__(
        self, *, bank_code: str, payments: Any, billing: Any, timeout: dt.timedelta
    ) -> None:
        self.bank_code = bank_code
        self._payments = payments
        self._billing = billing
        self._timeout = timeout.total_seconds()

    def check_bank(self, bank_code: str) -> None:
        if bank_code != self.bank_code:
            raise InvalidArgument("bank_code", f"{bank_code!r} is not bank {self.bank_code}")

    async def query_arrears(
        self, request: payment_pb2.QueryArrearsRequest
    ) -> payment_pb2.QueryArrearsResponse:
        self.check_bank(request.bank_code)
        if not request.account_id:
            raise InvalidArgument("account_id", "must not be empty")
        arrears = await self._arrears(request.account_id)
        return payment_pb2.QueryArrearsResponse(
            account_id=request.account_id,
            total_due=arrears.total_due,
            principal=arrears.principal,
            late_fee=arrears.late_fee,
            credit_balance=arrears.credit_balance,
            items=arrears.items,
        )

    async def collect(self, request: payment_pb2.CollectRequest) -> payment_pb2.CollectResponse:
        self.check_bank(request.bank_code)
        if not request.request_id:
            raise InvalidArgument("request_id", "must not be empty")
        if request.amount.fen <= 0:
            raise InvalidArgument("amount.fen", f"must be positive, got {request.amount.fen}")
        post = payment_pb2.PostPaymentRequest(
            bank_code=self.bank_code,
            bank_txn_id=request.request_id,
            account=common_pb2.AccountRef(account_id=request.account_id),
            amount=request.amount,
            channel=request.channel,
            bill_ids=request.bill_ids,
        )
        if request.HasField("collected_at"):
            post.paid_at.CopyFrom(request.collected_at)
        if request.HasField("settlement_date"):
            post.settlement_date.CopyFrom(request.settlement_date)
        posted = await self._call(self._payments.PostPayment, post)
        payment = posted.payment
        return payment_pb2.CollectResponse(
            request_id=request.request_id,
            payment_id=payment.payment_id,
            amount=payment.amount,
            remaining_due=await self._remaining(request.account_id),
            posted_at=payment.posted_at,
            duplicate=posted.duplicate,
        )

    async def reverse(self, request: payment_pb2.ReverseRequest) -> payment_pb2.ReverseResponse:
        self.check_bank(request.bank_code)
        if not request.request_id:
            raise InvalidArgument("request_id", "must not be empty")
        if not request.original_request_id:
            raise InvalidArgument("original_request_id", "must not be empty")
        reverse = payment_pb2.ReversePaymentRequest(
            bank_transaction=payment_pb2.BankTransactionRef(
                bank_code=self.bank_code, bank_txn_id=request.original_request_id
            ),
            reversal_txn_id=request.request_id,
            reason=request.reason,
        )
        if request.HasField("amount"):
            reverse.amount.CopyFrom(request.amount)
        reversed_ = await self._call(self._payments.ReversePayment, reverse)
        return payment_pb2.ReverseResponse(
            request_id=request.request_id,
            original_request_id=request.original_request_id,
            outcome=reversed_.outcome,
            payment_id=reversed_.payment.payment_id,
            duplicate=reversed_.duplicate,
        )

    async def state(self, serial: str) -> LedgerState:
        """What the ledger says of the bank's transaction ``serial`` (交易状态查询)."""
        ref = payment_pb2.BankTransactionRef(bank_code=self.bank_code, bank_txn_id=serial)
        try:
            payment = await self._call(
                self._payments.GetPayment, payment_pb2.GetPaymentRequest(bank_transaction=ref)
            )
        except NotFound:
            return LedgerState(TxnState.NOT_FOUND)
        if payment.status == payment_pb2.PAYMENT_STATUS_REVERSED:
            return LedgerState(TxnState.REVERSED, payment.account.account_id, payment.amount.fen)
        return LedgerState(TxnState.SUCCESS, payment.account.account_id, payment.amount.fen)

    async def _arrears(self, account_id: str) -> billing_pb2.Arrears:
        request = billing_pb2.GetArrearsRequest(
            account=common_pb2.AccountRef(account_id=account_id)
        )
        arrears: billing_pb2.Arrears = await self._call(self._billing.GetArrears, request)
        return arrears

    async def _remaining(self, account_id: str) -> common_pb2.Money:
        """What the account owes now; zero when billing cannot say (the payment stands)."""
        try:
            return (await self._arrears(account_id)).total_due
        except PowerbusError:
            return money(0)

    async def _call(self, method: Any, request: Any) -> Any:
        try:
            return await method(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise rpc_error(exc) from None
