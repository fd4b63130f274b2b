"""``powerbus sim bank`` against a real bank node and payment node on a real bus, with an
in-memory billing node: every collection posted exactly once, duplicates and lost replies
resolved, the day reconciled clean; and the same with the payment node SIGKILLed in the
middle and restarted."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from payment_support import (
    SIM_ACCOUNTS,
    MemoryBilling,
    free_port,
    make_bills,
    run_node,
)

from powerbus.adapters.bank import (
    CollectionClient,
    KeyRing,
    LineKind,
    LineStatus,
    MessageCodec,
    PaymentStatus,
    Statement,
    StatusReply,
    TxnState,
    read_statement,
)
from powerbus.adapters.bank.sim.settings import demo_key
from powerbus.bus.kernel.addresses import parse_host_port
from powerbus.bus.kernel.database import create_engine
from powerbus.bus.kernel.errors import Unavailable
from powerbus.bus.kernel.supervisor import BusHandle, NodeHandle
from powerbus.common.v1 import common_pb2
from powerbus.nodes.payment.store.payments import PaymentStore
from powerbus.nodes.sdk import BusChannel, NodeRunner
from powerbus.nodes.testing.plugin import NodeFactory
from powerbus.nodes.testing.sizes import sized
from powerbus.nodes.testing.waiting import eventually
from powerbus.payment.v1 import payment_pb2, payment_pb2_grpc
from powerbus.registry.v1 import registry_pb2, registry_pb2_grpc

BANK = "0102"
COUNT = sized(150, 3000)  # collections per test; `make soak` runs the heavy size
SETTLE = sized(60, 600)  # seconds for every collection to settle


@dataclass
class Stack:
    bus: BusHandle
    billing: MemoryBilling
    runner: NodeRunner
    payment: NodeHandle
    db: str
    tmp: Path
    bank_listen: str = ""
    _store: PaymentStore | None = None

    def store(self) -> PaymentStore:
        """The payment node's database, read from the test (one engine, closed at the end)."""
        if self._store is None:
            engine = create_engine(self.db)
            self._store = PaymentStore(engine, clock=lambda: dt.datetime.now(dt.timezone.utc))
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.engine.dispose()


async def registered_bank_listen(bus: BusHandle) -> str:
    async with grpc.aio.insecure_channel(bus.grpc) as channel:
        reply = await registry_pb2_grpc.RegistryStub(channel).ListNodes(
            registry_pb2.ListNodesRequest(service="powerbus.payment.v1.BankGateway"), timeout=5
        )
    (node,) = reply.nodes
    return node.metadata["bank_listen"]


@pytest.fixture
async def stack(bus: BusHandle, node_factory: NodeFactory, tmp_path: Path) -> AsyncIterator[Stack]:
    db = f"sqlite:///{tmp_path / 'payment.db'}"
    billing = MemoryBilling(make_bills(SIM_ACCOUNTS))
    runner = await run_node(billing, "billing-1", bus)
    try:
        payment = await asyncio.to_thread(
            node_factory, "payment", bus=bus, node_id="payment-1", db=db, apply_interval="0.2s"
        )
        stack = Stack(bus, billing, runner, payment, db, tmp_path)
        yield stack
        stack.close()
    finally:
        await runner.stop()


async def start_sim(
    stack: Stack, node_factory: NodeFactory, *, count: int, rate: int, faults: str
) -> asyncio.subprocess.Process:
    """The simulated bank, then the bank node between it and the bus. The bank waits for
    the utility's first connection; the node needs the bank's address, which the bank
    announces in its state file (it binds a port of its own choosing)."""
    stack.bank_listen = f"127.0.0.1:{free_port()}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "powerbus.bus", "sim", "bank",
        "--bank", BANK,
        "--connect", stack.bank_listen,
        "--count", str(count),
        "--rate", str(rate),
        "--seed", "7",
        "--drop-dir", str(stack.tmp / "drop"),
        "--faults", faults,
        "--statement-interval", "0.3",
        "--timeout", "2",
        "--state-file", str(stack.tmp / "sim.json"),
        "--log-level", "WARNING",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    state = stack.tmp / "sim.json"
    ready = await eventually(
        lambda: state.exists() and json.loads(state.read_text()), timeout=30, what="the bank"
    )
    await asyncio.to_thread(
        node_factory,
        "bank",
        bus=stack.bus,
        node_id="bank-0102",
        bank=BANK,
        listen_bank=stack.bank_listen,
        bank_address=ready["listen"],
    )
    assert await registered_bank_listen(stack.bus) == stack.bank_listen
    return proc


def statement(stack: Stack) -> Statement | None:
    paths = list((stack.tmp / "drop").glob(f"{BANK}_COLLECTION_*.txt"))
    return read_statement(paths[0]) if paths else None


def settled(stack: Stack, count: int, *, allow_processing: bool) -> Statement | None:
    """The statement once every collection is in it and (unless allowed) none in transit."""
    found = statement(stack)
    if found is None:
        return None
    collections = [line for line in found.lines if line.kind is LineKind.COLLECTION]
    if len(collections) < count:
        return None
    if not allow_processing and any(ln.status is LineStatus.PROCESSING for ln in collections):
        return None
    return found


async def stop_sim(proc: asyncio.subprocess.Process, stack: Stack) -> dict[str, int]:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()[-2000:]
    stats: dict[str, int] = json.loads((stack.tmp / "sim.json").read_text())["stats"]
    return stats


async def reconcile(stack: Stack, day: dt.date) -> tuple[int, dict[str, object]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "powerbus.bus", "reconcile",
        "--bus", stack.bus.grpc, "--bank", BANK, "--date", day.isoformat(), "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode in (0, 2), err.decode()
    return proc.returncode, json.loads(out)


def check_ledger(stack: Stack, final: Statement) -> None:
    """Exactly once: every serial the bank counts as collected is posted once and live;
    what the bank failed or reversed is not live; the ledger balances; billing agrees."""
    store = stack.store()
    audit = store.audit()
    assert audit.problems == ()
    payments = store.list_payments(bank_code=BANK, limit=100_000)
    by_serial = {p.bank_txn_id: p for p in payments}
    assert len(by_serial) == len(payments)  # each serial at most once
    reversed_at_bank = {ln.original_txn_id for ln in final.lines if ln.kind is LineKind.REVERSAL}
    for line in final.lines:
        if line.kind is not LineKind.COLLECTION:
            continue
        posted = by_serial.get(line.bank_txn_id)
        live = posted is not None and posted.status is PaymentStatus.POSTED
        if line.status is LineStatus.SUCCESS and line.bank_txn_id not in reversed_at_bank:
            assert live, f"{line.bank_txn_id} collected at the bank, not live here"
            assert posted is not None and posted.amount == line.amount
        elif line.status is not LineStatus.PROCESSING:
            assert not live, f"{line.bank_txn_id} is {line.status.name} at the bank, live here"
    live = {
        p.payment_id: (p.account_id, p.amount)
        for p in payments
        if p.status is PaymentStatus.POSTED and not p.application_pending
    }
    assert stack.billing.check(live) == []


async def test_collections_post_exactly_once_and_the_day_reconciles_clean(
    stack: Stack, node_factory: NodeFactory
) -> None:
    proc = await start_sim(
        stack,
        node_factory,
        count=COUNT,
        rate=150,
        faults="lost_reply=0.05,duplicate=0.05,latency=0-5",
    )
    try:
        final = await eventually(
            lambda: settled(stack, COUNT, allow_processing=False),
            timeout=SETTLE,
            what="collections",
        )
        await eventually(
            lambda: not stack.store().pending_applications(), timeout=20, what="applications"
        )
        code, report = await reconcile(stack, final.settlement_date)
        # A payment the bank never reported shows as ONLY_IN_SYSTEM (短款), not hidden.
        extra = await post_directly(stack, "X-NOT-AT-BANK")
        code_after, after = await reconcile(stack, final.settlement_date)
        unknown_bank = await reconcile_error(stack, "0999", final.settlement_date)
    finally:
        stats = await stop_sim(proc, stack)
    assert code_after == 2 and after["balanced"] is False
    (only_here,) = [i for i in after["items"] if i["category"] != "MATCHED"]  # type: ignore[attr-defined]
    assert only_here["category"] == "ONLY_IN_SYSTEM" and only_here["payment_id"] == extra
    assert "NOT_FOUND" in unknown_bank and "0999" in unknown_bank
    stats_ok = stats["started"] == COUNT
    assert stats["timeouts"] > 0 and stats["duplicates_sent"] > 0 and stats["unresolved"] == 0
    assert code == 0 and report["balanced"] is True, report
    final = statement(stack)
    assert final is not None
    check_ledger(stack, final)
    posted = [p for p in stack.store().list_payments(bank_code=BANK, limit=10_000)]
    reversed_at_bank = {ln.original_txn_id for ln in final.lines if ln.kind is LineKind.REVERSAL}
    kept = [
        ln
        for ln in final.lines
        if ln.kind is LineKind.COLLECTION
        and ln.status is LineStatus.SUCCESS
        and ln.bank_txn_id not in reversed_at_bank
    ]
    live = [p for p in posted if p.status is PaymentStatus.POSTED]
    assert stats_ok
    assert len(live) == len(kept) + 1 and len(posted) <= COUNT + 1  # each once, none extra
    assert report["bank_count"] == len(final.lines)


async def test_a_killed_payment_node_loses_nothing_and_doubles_nothing(
    stack: Stack, node_factory: NodeFactory
) -> None:
    proc = await start_sim(
        stack, node_factory, count=COUNT, rate=100, faults="lost_reply=0.03,duplicate=0.05"
    )
    try:
        await eventually(
            lambda: (s := statement(stack)) is not None and len(s.lines) > COUNT // 3,
            timeout=30,
            what="a third of the collections",
        )
        stack.payment.kill()  # SIGKILL: no drain, no goodbye
        await asyncio.sleep(0.5)
        stack.payment = await asyncio.to_thread(
            node_factory, "payment", bus=stack.bus, node_id="payment-1", db=stack.db,
            apply_interval="0.2s",
        )  # fmt: skip
        final = await eventually(
            lambda: settled(stack, COUNT, allow_processing=True), timeout=SETTLE, what="collections"
        )
        # What the bank left 在途 it resolves as banks do: ask the utility. The ledger's
        # answer must be the truth about each serial.
        await resolve_in_transit(stack, final)
        await eventually(
            lambda: not stack.store().pending_applications(), timeout=20, what="applications"
        )
        code, report = await reconcile(stack, final.settlement_date)
    finally:
        stats = await stop_sim(proc, stack)
    assert stats["started"] == COUNT and stats["timeouts"] > 0  # the crash was felt
    final = statement(stack)
    assert final is not None
    check_ledger(stack, final)
    assert code == 0 and report["balanced"] is True, report
    categories = {t["category"] for t in report["totals"]}  # type: ignore[attr-defined]
    assert categories <= {"MATCHED", "IN_TRANSIT"}


async def resolve_in_transit(stack: Stack, final: Statement) -> None:
    codec = MessageCodec(KeyRing({BANK: demo_key(BANK)}))
    client = CollectionClient(
        address=parse_host_port(stack.bank_listen), codec=codec, bank_code=BANK
    )
    store = stack.store()
    try:
        for line in final.lines:
            if line.status is not LineStatus.PROCESSING:
                continue
            reply = await ask(client, line.bank_txn_id, line.txn_time.date())
            posted = store.find(BANK, line.bank_txn_id)
            expected = {
                None: TxnState.NOT_FOUND,
                PaymentStatus.POSTED: TxnState.SUCCESS,
                PaymentStatus.REVERSED: TxnState.REVERSED,
            }[posted.status if posted else None]
            assert reply.state is expected, line.bank_txn_id
    finally:
        await client.stop()


async def ask(client: CollectionClient, serial: str, day: dt.date) -> StatusReply:
    """A status query, repeated while the utility answers 9098 (its breaker recovering
    from the crash), as a bank does."""
    give_up = asyncio.get_running_loop().time() + 20
    while True:
        try:
            return await client.query_status(serial, day)
        except Unavailable:
            if asyncio.get_running_loop().time() > give_up:
                raise
            await asyncio.sleep(0.2)


async def post_directly(stack: Stack, serial: str) -> str:
    async with BusChannel(target=stack.bus.grpc, caller="teller", default_timeout=10) as bus:
        reply = await bus.stub(payment_pb2_grpc.PaymentsStub).PostPayment(
            payment_pb2.PostPaymentRequest(
                bank_code=BANK,
                bank_txn_id=serial,
                account=common_pb2.AccountRef(account_id=SIM_ACCOUNTS[0]),
                amount=common_pb2.Money(fen=1_234, currency="CNY"),
            )
        )
    return str(reply.payment.payment_id)


async def reconcile_error(stack: Stack, bank: str, day: dt.date) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "powerbus.bus", "reconcile",
        "--bus", stack.bus.grpc, "--bank", bank, "--date", day.isoformat(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    return err.decode()
