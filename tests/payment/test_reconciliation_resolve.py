"""Operators resolve reconciliation differences (ResolveDifference and ``powerbus reconcile
resolve``) against a real payment node on a real bus, on SQLite and PostgreSQL: each
action is an audited ledger entry, the ledger stays balanced, an item is resolved once,
and a rerun of the reconciliation shows every item resolved."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
import sqlalchemy as sa
from payment_support import MemoryBank, MemoryBilling, make_bills, money, run_node

from powerbus.adapters.bank import (
    LineKind,
    LineStatus,
    PaymentChannel,
    PaymentStatus,
    Statement,
    StatementLine,
    net_total,
)
from powerbus.bus.kernel.database import create_engine
from powerbus.bus.kernel.supervisor import BusHandle
from powerbus.common.v1 import common_pb2
from powerbus.nodes.payment.convert import date_proto, timestamp
from powerbus.nodes.payment.ledger import Book, account
from powerbus.nodes.payment.store.payments import PaymentStore
from powerbus.nodes.payment.store.tables import entries, transactions
from powerbus.nodes.sdk import BusChannel
from powerbus.nodes.testing.plugin import NodeFactory
from powerbus.nodes.testing.waiting import eventually
from powerbus.payment.v1 import payment_pb2, payment_pb2_grpc

BANK = "0102"
DAY = dt.date(2026, 12, 4)
REPORT = "0102-20261204"
ACCOUNTS = tuple(f"33{n:08d}" for n in range(1, 5))
R = payment_pb2


def at(hour: int) -> dt.datetime:
    return dt.datetime(2026, 12, 4, hour)


def line(
    n: int, serial: str, amount: int, status: LineStatus = LineStatus.SUCCESS
) -> StatementLine:
    return StatementLine(
        line_number=n,
        bank_txn_id=serial,
        account_id=ACCOUNTS[n % len(ACCOUNTS)],
        amount=amount,
        kind=LineKind.COLLECTION,
        status=status,
        txn_time=at(8 + n),
        channel=PaymentChannel.ONLINE_BANKING,
    )


# The bank's day: B001 matches; B002 and B006 only the bank has; B003 the ledger posted
# for less; B004 failed at the bank but was posted; B005 (not here) only the ledger has;
# B007 arrives at the ledger after the report was made.
LINES = (
    line(2, "B001", 1_000),
    line(3, "B002", 2_000),
    line(4, "B003", 3_000),
    line(5, "B004", 4_000, LineStatus.FAILED),
    line(6, "B006", 6_000),
    line(7, "B007", 7_000),
)
STATEMENT = Statement(
    bank_code=BANK,
    settlement_date=DAY,
    lines=LINES,
    line_count=len(LINES),
    total_amount=net_total(LINES),
    file_name=f"{BANK}_COLLECTION_20261204.txt",
    sha256="0" * 64,
)


@dataclass
class World:
    payments: payment_pb2_grpc.PaymentsAsyncStub
    store: PaymentStore
    billing: MemoryBilling
    bus: BusHandle


@pytest.fixture
async def world(bus: BusHandle, node_factory: NodeFactory, db_url: str) -> AsyncIterator[World]:
    billing = MemoryBilling(make_bills(ACCOUNTS, per_account=1))
    runners = [await run_node(billing, "billing-1", bus)]
    runners.append(await run_node(MemoryBank(STATEMENT), "bank-0102", bus))
    engine = create_engine(db_url)
    try:
        await asyncio.to_thread(
            node_factory, "payment", bus=bus, node_id="payment-1", db=db_url, apply_interval="0.2s"
        )
        store = PaymentStore(engine, clock=lambda: dt.datetime.now(dt.timezone.utc))
        async with BusChannel(target=bus.grpc, caller="operator", default_timeout=10) as ch:
            yield World(ch.stub(payment_pb2_grpc.PaymentsStub), store, billing, bus)
    finally:
        engine.dispose()
        for runner in runners:
            await runner.stop()


async def post(world: World, serial: str, account_id: str, fen: int, paid: dt.datetime) -> None:
    await world.payments.PostPayment(
        R.PostPaymentRequest(
            bank_code=BANK,
            bank_txn_id=serial,
            account=common_pb2.AccountRef(account_id=account_id),
            amount=money(fen),
            channel=R.PAYMENT_CHANNEL_ONLINE_BANKING,
            paid_at=timestamp(paid),
            settlement_date=date_proto(DAY),
        )
    )


async def reconcile(world: World) -> R.ReconciliationReport:
    report: R.ReconciliationReport = await world.payments.Reconcile(
        R.ReconcileRequest(bank_code=BANK, settlement_date=date_proto(DAY))
    )
    return report


async def resolve(
    world: World, number: int, action: int, reason: str = "checked with the bank"
) -> R.ReconciliationItem:
    reply = await world.payments.ResolveDifference(
        R.ResolveDifferenceRequest(
            report_id=REPORT, item_number=number, action=action, reason=reason, operator="王五"
        )
    )
    return reply.item


async def refused(call: object, code: grpc.StatusCode) -> str:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        assert exc.code() is code, exc.details()
        return exc.details() or ""
    raise AssertionError(f"expected {code.name}")


async def cli(world: World, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "powerbus.bus", "reconcile", *args, "--bus", world.bus.grpc,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def numbered(report: R.ReconciliationReport) -> dict[str, R.ReconciliationItem]:
    return {i.bank_txn_id: i for i in report.items}


def journal(world: World, txn_ids: list[int]) -> list[tuple[str, str, str, str, int, int]]:
    """(kind, actor, memo, account, debit, credit) of the given journal transactions."""
    query = (
        sa.select(
            transactions.c.kind,
            transactions.c.actor,
            transactions.c.memo,
            entries.c.account,
            entries.c.debit,
            entries.c.credit,
        )
        .join(entries, entries.c.txn_id == transactions.c.txn_id)
        .where(transactions.c.txn_id.in_(txn_ids))
        .order_by(entries.c.entry_id)
    )
    with world.store.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]  # type: ignore[misc]


async def test_each_difference_is_resolved_once_as_an_audited_entry_and_a_rerun_shows_it(
    world: World,
) -> None:
    await post(world, "B001", LINES[0].account_id, 1_000, at(10))
    await post(world, "B003", LINES[2].account_id, 2_900, at(12))
    await post(world, "B004", LINES[3].account_id, 4_000, at(13))
    await post(world, "B005", ACCOUNTS[0], 1_500, at(14))
    first = await reconcile(world)
    assert first.report_id == REPORT
    items = numbered(first)
    assert [i.item_number for i in first.items] == list(range(1, len(first.items) + 1))
    assert {s: R.ReconciliationCategory.Name(i.category)[24:] for s, i in items.items()} == {
        "B001": "MATCHED",
        "B002": "ONLY_IN_BANK",
        "B003": "AMOUNT_DIFF",
        "B004": "STATUS_DIFF",
        "B005": "ONLY_IN_SYSTEM",
        "B006": "ONLY_IN_BANK",
        "B007": "ONLY_IN_BANK",
    }
    assert first.unresolved_count == 6
    await post(world, "B007", LINES[5].account_id, 7_000, at(15))  # after the report

    # Actions that do not fit are refused, naming the item; nothing is written.
    before = world.store.audit()
    detail = await refused(
        resolve(world, items["B002"].item_number, R.RESOLUTION_ACTION_REVERSE),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "REVERSE" in detail and "B002" in detail
    detail = await refused(
        resolve(world, items["B001"].item_number, R.RESOLUTION_ACTION_WRITE_OFF),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "MATCHED" in detail
    detail = await refused(
        resolve(world, items["B007"].item_number, R.RESOLUTION_ACTION_POST),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "changed since the report" in detail
    assert world.store.audit().transactions == before.transactions

    # POST the collection only the bank has.
    posted = await resolve(world, items["B002"].item_number, R.RESOLUTION_ACTION_POST, "补记")
    done = posted.resolution
    assert (done.action, done.operator, done.reason) == (R.RESOLUTION_ACTION_POST, "王五", "补记")
    assert len(done.ledger_txn_ids) == 1 and done.payment_id
    assert done.category == R.RECONCILIATION_CATEGORY_ONLY_IN_BANK
    memo = "bank 0102 txn B002"
    assert journal(world, list(done.ledger_txn_ids)) == [
        ("COLLECTION", "王五", memo, account(Book.BANK_CLEARING, BANK), 2_000, 0),
        ("COLLECTION", "王五", memo, account(Book.SUSPENSE, LINES[1].account_id), 0, 2_000),
    ]
    payment = world.store.find(BANK, "B002")
    assert payment is not None and payment.amount == 2_000
    assert (
        payment.paid_at == LINES[1].txn_time and payment.channel == "PAYMENT_CHANNEL_ONLINE_BANKING"
    )

    # Resolving twice is refused, naming the item and the first resolution.
    detail = await refused(
        resolve(world, items["B002"].item_number, R.RESOLUTION_ACTION_WRITE_OFF),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert f"item {items['B002'].item_number}" in detail and "B002" in detail
    assert "already resolved: POST by 王五" in detail and "补记" in detail

    # WRITE_OFF an amount difference: the bank's 100 fen more go to the write-off account.
    item = await resolve(world, items["B003"].item_number, R.RESOLUTION_ACTION_WRITE_OFF)
    written = item.resolution
    assert written.written_off.fen == 100
    rows = journal(world, list(written.ledger_txn_ids))
    assert [(r[0], r[1], r[3], r[4], r[5]) for r in rows] == [
        ("WRITE_OFF", "王五", account(Book.BANK_CLEARING, BANK), 100, 0),
        ("WRITE_OFF", "王五", account(Book.WRITE_OFF), 0, 100),
    ]
    assert rows[0][2] == "核销 B003: checked with the bank"

    # REVERSE through the command line: a STATUS_DIFF (failed at the bank, posted here).
    number = str(items["B004"].item_number)
    args = ("resolve", "--report", REPORT, "--item", number, "--action", "reverse")
    code, out, err = await cli(world, *args, "--reason", "bank says failed", "--operator", "li")
    assert code == 0, err
    assert f"report {REPORT} item {number}: resolved" in out
    assert "REVERSE by li" in out and "reason: bank says failed" in out
    assert all(len(row) <= 80 for row in out.splitlines()), out
    reversed_ = world.store.find(BANK, "B004")
    assert reversed_ is not None and reversed_.status is PaymentStatus.REVERSED
    code, out, err = await cli(world, *args, "--reason", "again", "--operator", "li")
    assert code == 1 and "already resolved: REVERSE by li" in err, err

    # REVERSE what only the ledger has; WRITE_OFF the other ONLY_IN_BANK, as JSON.
    await resolve(world, items["B005"].item_number, R.RESOLUTION_ACTION_REVERSE)
    number = str(items["B006"].item_number)
    code, out, err = await cli(
        world, "resolve", "--report", REPORT, "--item", number, "--action", "write-off",
        "--reason", "手续费", "--json",
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out)["resolution"]
    assert data["action"] == "WRITE_OFF" and data["written_off_fen"] == 6_000
    assert data["payment_id"] == "" and len(data["ledger_txn_ids"]) == 1

    # The ledger stays balanced; the write-off account holds exactly what was written off.
    audit = world.store.audit()
    assert audit.problems == () and audit.debits == audit.credits
    with world.store.engine.connect() as conn:
        held = conn.execute(
            sa.select(sa.func.sum(entries.c.debit - entries.c.credit)).where(
                entries.c.account == account(Book.WRITE_OFF)
            )
        ).scalar_one()
    assert held == -(100 + 6_000)

    # B007 was posted after the report: writing its ONLY_IN_BANK off is refused as stale.
    detail = await refused(
        resolve(world, items["B007"].item_number, R.RESOLUTION_ACTION_WRITE_OFF),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "reconcile again" in detail and "B007" in detail

    # A rerun shows every resolution, and nothing is left unresolved.
    rerun = numbered(await reconcile(world))
    assert rerun["B002"].category == R.RECONCILIATION_CATEGORY_MATCHED
    assert rerun["B004"].category == R.RECONCILIATION_CATEGORY_MATCHED
    assert rerun["B005"].category == R.RECONCILIATION_CATEGORY_MATCHED
    assert rerun["B007"].category == R.RECONCILIATION_CATEGORY_MATCHED
    for serial, action in (
        ("B002", R.RESOLUTION_ACTION_POST),
        ("B003", R.RESOLUTION_ACTION_WRITE_OFF),
        ("B004", R.RESOLUTION_ACTION_REVERSE),
        ("B005", R.RESOLUTION_ACTION_REVERSE),
        ("B006", R.RESOLUTION_ACTION_WRITE_OFF),
    ):
        assert rerun[serial].resolution.action == action, serial
    assert not rerun["B001"].HasField("resolution")
    code, out, err = await cli(world, "--bank", BANK, "--date", DAY.isoformat(), "--stored")
    assert code == 0, err
    assert "all resolved" in out.splitlines()[0] and "WRITE_OFF by 王五" in out
    assert all(len(row) <= 80 for row in out.splitlines()[4:]), out

    # Billing got the posted payment and lost the reversed ones.
    def applied() -> bool:
        store = world.store
        return not (store.pending_applications() or store.pending_unapplications())

    await eventually(applied, timeout=15, what="billing applied and unapplied everything")
    live = {
        p.payment_id: (p.account_id, p.amount)
        for p in world.store.list_payments(bank_code=BANK, limit=100)
        if p.status is PaymentStatus.POSTED
    }
    assert payment.payment_id in live and world.billing.check(live) == []


async def test_bad_requests_name_what_is_wrong(world: World) -> None:
    await refused(reconcile_missing(world), grpc.StatusCode.NOT_FOUND)
    await reconcile(world)
    for report_id, code, words in (
        ("0102-2026-12-04", grpc.StatusCode.INVALID_ARGUMENT, "report_id"),
        ("0102-20261399", grpc.StatusCode.INVALID_ARGUMENT, "no date"),
        ("0103-20261204", grpc.StatusCode.NOT_FOUND, "0103"),
    ):
        detail = await refused(
            world.payments.ResolveDifference(
                R.ResolveDifferenceRequest(
                    report_id=report_id, item_number=1, action=R.RESOLUTION_ACTION_POST,
                    reason="x", operator="o",
                )
            ),
            code,
        )  # fmt: skip
        assert words in detail, detail
    detail = await refused(resolve(world, 99, R.RESOLUTION_ACTION_POST), grpc.StatusCode.NOT_FOUND)
    assert "no item 99" in detail
    detail = await refused(
        resolve(world, 1, R.RESOLUTION_ACTION_UNSPECIFIED), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "action" in detail
    detail = await refused(
        resolve(world, 1, R.RESOLUTION_ACTION_POST, reason="  "), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert "reason" in detail
    assert world.store.audit().transactions == 0


async def reconcile_missing(world: World) -> R.ReconciliationReport:
    """Resolving before the date was ever reconciled: there is no stored report."""
    reply = await world.payments.ResolveDifference(
        R.ResolveDifferenceRequest(
            report_id=REPORT, item_number=1, action=R.RESOLUTION_ACTION_POST, reason="r",
            operator="o",
        )
    )  # fmt: skip
    return reply.item
