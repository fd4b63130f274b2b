"""Helpers of the payment tests: an in-memory billing node that speaks billing.proto (the
real one is not merged yet), an in-memory bank gateway that hands out one statement, and
small utilities.

``MemoryBilling`` keeps bills per account, applies payments named bills first then the
oldest due, keeps the rest as credit, and is idempotent by payment_id as billing.proto
says; ``down = True`` makes every call UNAVAILABLE, as a billing node that cannot be
reached.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from powerbus.adapters.bank import Statement
from powerbus.billing.v1 import billing_pb2, billing_pb2_grpc
from powerbus.bus.kernel.addresses import parse_host_port
from powerbus.bus.kernel.errors import AlreadyExists, NotFound, Unavailable
from powerbus.bus.kernel.supervisor import BusHandle
from powerbus.common.v1 import common_pb2
from powerbus.nodes.payment import convert
from powerbus.nodes.payment.reconciliation import BANK_CODE_KEY
from powerbus.nodes.sdk import Node, NodeConfig, NodeRunner
from powerbus.payment.v1 import payment_pb2, payment_pb2_grpc

Context = Any

SIM_ACCOUNTS = tuple(f"31{n:08d}" for n in range(1, 101))


def money(fen: int) -> common_pb2.Money:
    return common_pb2.Money(fen=fen, currency="CNY")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Bill:
    bill_id: str
    amount: int
    paid: dict[str, int] = field(default_factory=dict)  # payment_id -> fen, live only

    @property
    def due(self) -> int:
        return self.amount - sum(self.paid.values())


@dataclass
class Applied:
    account_id: str
    amount: int
    allocations: list[tuple[str, int]]
    unallocated: int
    released: bool = False


class MemoryBilling(Node, billing_pb2_grpc.BillingServicer):
    """Billing from memory: GetArrears, ApplyPayment, UnapplyPayment."""

    kind = "memory-billing"

    def __init__(self, bills: dict[str, list[Bill]]) -> None:
        self.bills = bills
        self.applied: dict[str, Applied] = {}
        self.down = False
        self.apply_calls = 0

    def credit(self, account_id: str) -> int:
        return sum(
            a.unallocated
            for a in self.applied.values()
            if a.account_id == account_id and not a.released
        )

    def _up(self) -> None:
        if self.down:
            raise Unavailable("billing is down (test)")

    async def GetArrears(
        self, request: billing_pb2.GetArrearsRequest, context: Context
    ) -> billing_pb2.Arrears:
        self._up()
        account = request.account.account_id
        if account not in self.bills:
            raise NotFound(f"account {account} unknown to billing")
        due = [b for b in self.bills[account] if b.due > 0]
        principal = sum(b.due for b in due)
        credit = self.credit(account)
        return billing_pb2.Arrears(
            account=request.account,
            items=[
                billing_pb2.ArrearsItem(bill_id=b.bill_id, amount_due=money(b.due)) for b in due
            ],
            principal=money(principal),
            late_fee=money(0),
            total_due=money(max(0, principal - credit)),
            credit_balance=money(credit),
        )

    async def ApplyPayment(
        self, request: billing_pb2.ApplyPaymentRequest, context: Context
    ) -> billing_pb2.ApplyPaymentResponse:
        self._up()
        self.apply_calls += 1
        account = request.account.account_id
        if account not in self.bills:
            raise NotFound(f"account {account} unknown to billing")
        earlier = self.applied.get(request.payment_id)
        if earlier is not None:
            if (earlier.account_id, earlier.amount) != (account, request.amount.fen):
                raise AlreadyExists("payment_id", f"{request.payment_id} applied otherwise")
            return self._response(request.payment_id, earlier, duplicate=True)
        left = request.amount.fen
        bills = self.bills[account]
        named = [b for b in bills if b.bill_id in request.bill_ids]
        order = named + [b for b in bills if b not in named]
        allocations: list[tuple[str, int]] = []
        for bill in order:
            take = min(left, bill.due)
            if take > 0:
                bill.paid[request.payment_id] = take
                allocations.append((bill.bill_id, take))
                left -= take
        applied = Applied(account, request.amount.fen, allocations, left)
        self.applied[request.payment_id] = applied
        return self._response(request.payment_id, applied, duplicate=False)

    async def UnapplyPayment(
        self, request: billing_pb2.UnapplyPaymentRequest, context: Context
    ) -> billing_pb2.UnapplyPaymentResponse:
        self._up()
        applied = self.applied.get(request.payment_id)
        if applied is None:
            raise NotFound(f"payment {request.payment_id} was never applied")
        if not applied.released:
            applied.released = True
            for bill in self.bills[applied.account_id]:
                bill.paid.pop(request.payment_id, None)
        return billing_pb2.UnapplyPaymentResponse(unallocated=money(applied.unallocated))

    def _response(
        self, payment_id: str, applied: Applied, *, duplicate: bool
    ) -> billing_pb2.ApplyPaymentResponse:
        return billing_pb2.ApplyPaymentResponse(
            allocations=[
                billing_pb2.PaymentAllocation(payment_id=payment_id, bill_id=b, amount=money(f))
                for b, f in applied.allocations
            ],
            unallocated=money(applied.unallocated),
            duplicate=duplicate,
        )

    def check(self, live: dict[str, tuple[str, int]]) -> list[str]:
        """Billing's side of the invariants against ``live`` (payment_id -> (account,
        amount) of POSTED, applied payments): each bill's paid amount is the sum of its
        live allocations, nothing released still pays, nothing live is missing."""
        problems: list[str] = []
        for payment_id, applied in self.applied.items():
            if applied.released == (payment_id in live):
                problems.append(f"{payment_id}: released={applied.released} at billing")
        for payment_id in live:
            if payment_id not in self.applied:
                problems.append(f"{payment_id}: applied in the ledger, unknown to billing")
        for bills in self.bills.values():
            for bill in bills:
                if bill.due < 0:
                    problems.append(f"bill {bill.bill_id} overpaid")
                stale = [p for p in bill.paid if p not in live]
                if stale:
                    problems.append(f"bill {bill.bill_id} still paid by {stale}")
        return problems


class MemoryBank(Node, payment_pb2_grpc.BankGatewayServicer):
    """A bank node's FetchStatement from memory: the statement the test sets, in one page,
    registered under its bank code as a real bank node is (the payment node finds it so).
    """

    kind = "memory-bank"

    def __init__(self, statement: Statement) -> None:
        self.statement = statement

    def metadata(self) -> Mapping[str, str]:
        return {BANK_CODE_KEY: self.statement.bank_code}

    async def FetchStatement(
        self, request: payment_pb2.FetchStatementRequest, context: Context
    ) -> payment_pb2.FetchStatementResponse:
        s = self.statement
        return payment_pb2.FetchStatementResponse(
            bank_code=s.bank_code,
            settlement_date=request.settlement_date,
            lines=[convert.statement_line_proto(line) for line in s.lines],
            line_count=s.line_count,
            total_amount=money(s.total_amount),
            file_name=s.file_name,
            sha256=s.sha256,
        )


def make_bills(
    accounts: tuple[str, ...], *, per_account: int = 2, amount: int = 10_000
) -> dict[str, list[Bill]]:
    return {
        a: [Bill(f"{a}-B{n}", amount + 37 * n) for n in range(1, per_account + 1)] for a in accounts
    }


async def run_node(node: Node, node_id: str, bus: BusHandle) -> NodeRunner:
    """Serve ``node`` in this process, registered on ``bus``."""
    config = NodeConfig(
        id=node_id,
        bus=parse_host_port(bus.grpc),
        deregister_delay=dt.timedelta(0),
        drain_grace=dt.timedelta(milliseconds=200),
    )
    runner = NodeRunner(node, config=config)
    await runner.start()
    await asyncio.wait_for(runner.wait_registered(), timeout=15)
    return runner
