"""A seeded simulation of the money path, in the manner of TigerBeetle's simulator.

From one integer seed it generates bills, collections (partial, exact, over), duplicates,
conflicting repeats, reversals before and after their originals, billing outages and a
payment-node crash (SIGKILL) and restart, in a random order, and runs them against a real
payment node on a real bus. After every step: the ledger balances, each bank serial is
posted at most once, every serial is where the model says. At the end: billing's bills
agree with the live allocations, and reconciling the day against the statement the bank
would write is clean.

A failing seed is printed; replay it with ``POWERBUS_PAYMENT_SEEDS=1234 pytest
tests/payment/test_money_path_simulation.py``; ``make soak`` runs thousands of seeds
with longer histories (``POWERBUS_SOAK=1``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from payment_support import MemoryBilling, make_bills, money, run_node

from powerbus.adapters.bank import (
    LineKind,
    LineStatus,
    PaymentChannel,
    PaymentStatus,
    Statement,
    StatementLine,
    Window,
    net_total,
    reconcile,
)
from powerbus.bus.kernel.database import create_engine
from powerbus.bus.kernel.supervisor import BusHandle, NodeHandle
from powerbus.common.v1 import common_pb2
from powerbus.nodes.payment.convert import date_proto, timestamp
from powerbus.nodes.payment.store.payments import PaymentStore
from powerbus.nodes.sdk import BusChannel
from powerbus.nodes.testing.plugin import NodeFactory
from powerbus.nodes.testing.sizes import sized
from powerbus.payment.v1 import payment_pb2, payment_pb2_grpc

BANK = "0103"
DAY = dt.date(2026, 12, 4)
STEPS = sized(40, 200)  # steps per seed; `make soak` runs longer histories


def _seeds() -> list[int]:
    text = os.environ.get("POWERBUS_PAYMENT_SEEDS", "7,11,42")
    seeds: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        seeds += list(range(int(low), int(high or low) + 1))
    return seeds


@dataclass
class Txn:
    """What the bank believes of one serial."""

    serial: str
    account: str
    amount: int
    at: dt.datetime
    state: str  # "posted", "reversed", "blocked" (reversed before it arrived)
    reversal: str = ""


@dataclass
class World:
    rng: random.Random
    payments: payment_pb2_grpc.PaymentsAsyncStub
    billing: MemoryBilling
    store: PaymentStore
    accounts: tuple[str, ...]
    restart: object
    txns: dict[str, Txn] = field(default_factory=dict)
    counter: int = 0
    crashed: bool = False
    log: list[str] = field(default_factory=list)

    def serial(self) -> str:
        self.counter += 1
        return f"S{self.counter:06d}"


async def post(
    world: World, txn: Txn, *, amount: int | None = None
) -> payment_pb2.PostPaymentResponse:
    request = payment_pb2.PostPaymentRequest(
        bank_code=BANK,
        bank_txn_id=txn.serial,
        account=common_pb2.AccountRef(account_id=txn.account),
        amount=money(amount if amount is not None else txn.amount),
        channel=payment_pb2.PAYMENT_CHANNEL_BANK_COUNTER,
        paid_at=timestamp(txn.at),
        settlement_date=date_proto(DAY),
    )
    reply: payment_pb2.PostPaymentResponse = await world.payments.PostPayment(request, timeout=10)
    return reply


async def reverse(world: World, txn: Txn, reversal: str) -> payment_pb2.ReversePaymentResponse:
    request = payment_pb2.ReversePaymentRequest(
        bank_transaction=payment_pb2.BankTransactionRef(bank_code=BANK, bank_txn_id=txn.serial),
        reversal_txn_id=reversal,
        amount=money(txn.amount),
        reason="模拟冲正",
    )
    reply: payment_pb2.ReversePaymentResponse = await world.payments.ReversePayment(
        request, timeout=10
    )
    return reply


@dataclass
class Op:
    """One step, drawn from the seed before it runs, so a resend repeats it exactly."""

    kind: str
    txn: Txn | None = None


def plan(world: World) -> Op:
    rng = world.rng
    live = [t for t in world.txns.values() if t.state == "posted"]
    kinds = ["collect"] * 5 + ["duplicate", "conflict", "reverse", "reverse_first", "billing"]
    if not world.crashed:
        kinds.append("crash")
    kind = rng.choice(kinds)
    if kind in ("duplicate", "conflict", "reverse") and not live:
        kind = "collect"
    world.log.append(kind)
    if kind == "collect":
        account = rng.choice(world.accounts)
        due = sum(b.due for b in world.billing.bills[account])
        amount = rng.choice([rng.randint(1, 9_999), max(due, 1), due + rng.randint(1, 5_000)])
        at = dt.datetime(2026, 12, 4, 9) + dt.timedelta(minutes=world.counter)
        return Op(kind, Txn(world.serial(), account, max(amount, 1), at, "posted"))
    if kind == "reverse_first":
        at = dt.datetime(2026, 12, 4, 10)
        txn = Txn(
            world.serial(), rng.choice(world.accounts), rng.randint(100, 5_000), at, "blocked"
        )
        txn.reversal = f"R{txn.serial}"
        return Op(kind, txn)
    if kind in ("duplicate", "conflict", "reverse"):
        return Op(kind, rng.choice(live))
    return Op(kind)


async def run(world: World, op: Op, *, first: bool) -> None:
    """Run ``op``; an UNAVAILABLE escapes so the caller resends the same op."""
    txn = op.txn
    if op.kind == "collect":
        assert txn is not None
        reply = await post(world, txn)
        assert not (first and reply.duplicate)  # a resend may find it posted
        world.txns[txn.serial] = txn
    elif op.kind == "duplicate":
        assert txn is not None
        reply = await post(world, txn)
        assert reply.duplicate and reply.payment.amount.fen == txn.amount
    elif op.kind == "conflict":
        assert txn is not None
        await expect(post(world, txn, amount=txn.amount + 1), grpc.StatusCode.ALREADY_EXISTS)
    elif op.kind == "reverse":
        assert txn is not None
        txn.reversal = f"R{txn.serial}"
        reply = await reverse(world, txn, txn.reversal)
        assert reply.outcome == payment_pb2.REVERSE_OUTCOME_REVERSED
        assert not (first and reply.duplicate)
        txn.state = "reversed"
        again = await reverse(world, txn, txn.reversal)
        assert again.duplicate
    elif op.kind == "reverse_first":
        assert txn is not None
        reply = await reverse(world, txn, txn.reversal)
        assert reply.outcome == payment_pb2.REVERSE_OUTCOME_ORIGINAL_NOT_FOUND
        world.txns[txn.serial] = txn
        await expect(post(world, txn), grpc.StatusCode.FAILED_PRECONDITION)  # late original
    elif op.kind == "billing":
        world.billing.down = not world.billing.down
    elif op.kind == "crash" and first:
        world.crashed = True
        await world.restart()  # type: ignore[operator]


async def expect(call: Awaitable[object], code: grpc.StatusCode) -> None:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        if exc.code() is code:
            return
        raise
    raise AssertionError(f"expected {code.name}")


def check(world: World) -> None:
    """The invariants after every step."""
    audit = world.store.audit()
    assert audit.problems == (), audit.problems
    for txn in world.txns.values():
        found = world.store.find(BANK, txn.serial)
        if txn.state == "blocked":
            assert found is None
        else:
            assert (
                found is not None and found.amount == txn.amount and found.account_id == txn.account
            )
            expected = PaymentStatus.POSTED if txn.state == "posted" else PaymentStatus.REVERSED
            assert found.status is expected, txn.serial
    assert audit.payments == sum(t.state != "blocked" for t in world.txns.values())


def bank_statement(world: World) -> Statement:
    lines: list[StatementLine] = []
    for txn in world.txns.values():
        if txn.state == "blocked":
            continue
        lines.append(
            StatementLine(
                line_number=len(lines) + 2,
                bank_txn_id=txn.serial,
                account_id=txn.account,
                amount=txn.amount,
                kind=LineKind.COLLECTION,
                status=LineStatus.SUCCESS,
                txn_time=txn.at,
                channel=PaymentChannel.BANK_COUNTER,
            )
        )
        if txn.state == "reversed":
            lines.append(
                StatementLine(
                    line_number=len(lines) + 2,
                    bank_txn_id=txn.reversal,
                    account_id=txn.account,
                    amount=txn.amount,
                    kind=LineKind.REVERSAL,
                    status=LineStatus.SUCCESS,
                    txn_time=txn.at,
                    channel=PaymentChannel.BANK_COUNTER,
                    original_txn_id=txn.serial,
                )
            )
    return Statement(
        bank_code=BANK,
        settlement_date=DAY,
        lines=tuple(lines),
        line_count=len(lines),
        total_amount=net_total(lines),
        file_name="simulated",
        sha256="",
    )


@pytest.fixture
async def channel(bus: BusHandle) -> AsyncIterator[BusChannel]:
    async with BusChannel(target=bus.grpc, caller="bank-sim", default_timeout=10) as ch:
        yield ch


@pytest.mark.parametrize("seed", _seeds())
async def test_money_path(
    seed: int, bus: BusHandle, node_factory: NodeFactory, channel: BusChannel, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    accounts = tuple(f"32{n:08d}" for n in range(1, rng.randint(3, 6)))
    billing = MemoryBilling(make_bills(accounts, per_account=rng.randint(1, 3)))
    runner = await run_node(billing, "billing-1", bus)
    db = f"sqlite:///{tmp_path / 'payment.db'}"
    node: list[NodeHandle] = []

    def start() -> None:
        node.append(
            node_factory("payment", bus=bus, node_id="payment-1", db=db, apply_interval="0.1s")
        )

    async def restart() -> None:
        node[-1].kill()
        await asyncio.to_thread(start)

    engine = create_engine(db)
    try:
        await asyncio.to_thread(start)
        store = PaymentStore(engine, clock=lambda: dt.datetime.now(dt.timezone.utc))
        payments = channel.stub(payment_pb2_grpc.PaymentsStub)
        world = World(rng, payments, billing, store, accounts, restart)
        try:
            for _ in range(STEPS):
                await until_served(world, plan(world))
                check(world)
            billing.down = False
            await until_applied(world)
            live = {
                p.payment_id: (p.account_id, p.amount)
                for p in store.list_payments(bank_code=BANK, limit=10_000)
                if p.status is PaymentStatus.POSTED
            }
            assert billing.check(live) == []
            window = Window(settlement_date=DAY)
            entries = store.ledger_entries(BANK, window.start, window.end)
            report = reconcile(
                entries, bank_statement(world), window, generated_at=dt.datetime.now()
            )
            assert report.balanced, report.differences()
        except BaseException:
            print(f"money-path simulation failed: seed {seed}, steps {world.log}")
            print(f"replay: POWERBUS_PAYMENT_SEEDS={seed} pytest {__file__}")
            raise
    finally:
        engine.dispose()
        await runner.stop()


async def until_served(world: World, op: Op) -> None:
    """Run a step; while the node restarts (UNAVAILABLE, or the bus's breaker still open)
    the caller resends the same step, as a bank resends the same serial."""
    give_up = asyncio.get_running_loop().time() + 30
    first = True
    while True:
        try:
            await run(world, op, first=first)
            return
        except grpc.aio.AioRpcError as exc:
            if exc.code() is not grpc.StatusCode.UNAVAILABLE:
                raise
            if asyncio.get_running_loop().time() > give_up:
                raise
            first = False
            world.log.append("resend")
            await asyncio.sleep(0.2)


async def until_applied(world: World) -> None:
    give_up = asyncio.get_running_loop().time() + 20
    while world.store.pending_applications() or world.store.pending_unapplications():
        assert asyncio.get_running_loop().time() < give_up, "applications still pending"
        await asyncio.sleep(0.1)
