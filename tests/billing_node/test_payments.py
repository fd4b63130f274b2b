"""Payments, arrears and corrections through the bus: ApplyPayment idempotent by
payment_id, UnapplyPayment, GetArrears with late fees, ListBills, cancel-and-rebill."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import grpc
import pytest
from billing_support import CALL_TIMEOUT, period
from sim_nodes import account_id

from powerbus.billing.v1 import billing_pb2
from powerbus.bus.kernel.database import create_engine
from powerbus.common.v1 import common_pb2
from powerbus.nodes.billing.bills import Bills

ACCOUNT = common_pb2.AccountRef(account_id=account_id(5))


def day(y, m, d):
    return common_pb2.Date(year=y, month=m, day=d)


def bill_month(billing, run_id, month, due):
    request = billing_pb2.StartBillingRunRequest(
        run_id=run_id, period=period(2026, month), account_ids=[ACCOUNT.account_id], due_date=due
    )
    billing.stub.StartBillingRun(request, timeout=CALL_TIMEOUT)
    assert billing.wait_run(run_id).bills_issued == 1


def pay(billing, payment_id, fen, *bill_ids):
    request = billing_pb2.ApplyPaymentRequest(
        payment_id=payment_id,
        account=ACCOUNT,
        amount=common_pb2.Money(fen=fen, currency="CNY"),
        bill_ids=bill_ids,
    )
    return billing.stub.ApplyPayment(request, timeout=CALL_TIMEOUT)


def arrears(billing, as_of):
    request = billing_pb2.GetArrearsRequest(account=ACCOUNT, as_of=as_of)
    return billing.stub.GetArrears(request, timeout=CALL_TIMEOUT)


def test_payments_arrears_and_corrections(billing_factory):
    billing = billing_factory(accounts=10)
    bill_month(billing, "sep", 9, day(2026, 10, 15))
    bill_month(billing, "oct", 10, day(2026, 11, 15))
    listed = billing.stub.ListBills(
        billing_pb2.ListBillsRequest(account=ACCOUNT), timeout=CALL_TIMEOUT
    )
    oct_bill, sep_bill = listed.bills  # newest period first
    sep, oct_ = sep_bill.total.fen, oct_bill.total.fen

    # Arrears on 25 Oct: September's bill 10 days overdue at 1‰ a day, October not yet due.
    owed = arrears(billing, day(2026, 10, 25))
    assert [i.bill_id for i in owed.items] == [sep_bill.bill_id, oct_bill.bill_id]
    assert [i.days_overdue for i in owed.items] == [10, 0]
    hand = max(100, (sep * 10 + 500) // 1000)  # sep fen × 10‰, half up, 1-yuan minimum
    assert owed.items[0].late_fee.fen == hand and owed.items[1].late_fee.fen == 0
    assert owed.principal.fen == sep + oct_ and owed.total_due.fen == sep + oct_ + hand
    assert owed.late_fee_rate.value == "0.001"

    # A part payment goes to the oldest bill; the same payment_id again applies nothing.
    first = pay(billing, "pay-1", 1000)
    assert [(a.bill_id, a.amount.fen) for a in first.allocations] == [(sep_bill.bill_id, 1000)]
    repeat = pay(billing, "pay-1", 1000)
    assert repeat.duplicate and list(repeat.allocations) == list(first.allocations)
    assert billing.scalar("SELECT count(*) FROM billing_allocations") == 1
    assert (
        billing.scalar("SELECT paid_fen FROM billing_bills WHERE bill_id = :b", b=sep_bill.bill_id)
        == 1000
    )
    with pytest.raises(grpc.RpcError) as clash:
        pay(billing, "pay-1", 999)
    assert clash.value.code() is grpc.StatusCode.ALREADY_EXISTS
    partly = billing.stub.GetBill(
        billing_pb2.GetBillRequest(bill_id=sep_bill.bill_id), timeout=CALL_TIMEOUT
    )
    assert partly.status == billing_pb2.BILL_STATUS_PARTIALLY_PAID
    assert partly.amount_due.fen == sep - 1000

    # A payment naming October pays it first, then September; the rest is credit.
    big = pay(billing, "pay-2", sep + oct_ + 500, oct_bill.bill_id)
    assert [(a.bill_id, a.amount.fen) for a in big.allocations] == [
        (oct_bill.bill_id, oct_),
        (sep_bill.bill_id, sep - 1000),
    ]
    assert big.unallocated.fen == 1500
    settled = arrears(billing, day(2026, 12, 1))
    assert (settled.principal.fen, settled.credit_balance.fen, settled.total_due.fen) == (
        0,
        1500,
        0,
    )

    # Reversing pay-2 makes both bills due again and takes the credit back; twice is once.
    undo = billing.stub.UnapplyPayment(
        billing_pb2.UnapplyPaymentRequest(payment_id="pay-2", reason="冲正"), timeout=CALL_TIMEOUT
    )
    assert len(undo.released) == 2 and undo.unallocated.fen == 1500
    again = billing.stub.UnapplyPayment(
        billing_pb2.UnapplyPaymentRequest(payment_id="pay-2"), timeout=CALL_TIMEOUT
    )
    assert [a.bill_id for a in again.released] == [a.bill_id for a in undo.released]
    due = arrears(billing, day(2026, 10, 20))
    assert due.principal.fen == sep - 1000 + oct_ and due.credit_balance.fen == 0
    with pytest.raises(grpc.RpcError) as unknown:
        billing.stub.UnapplyPayment(
            billing_pb2.UnapplyPaymentRequest(payment_id="nope"), timeout=CALL_TIMEOUT
        )
    assert unknown.value.code() is grpc.StatusCode.NOT_FOUND

    # Correction: void October (kept, with the reason), then a new run bills it again,
    # the new bill linked to the voided one.
    engine = create_engine(billing.db_url)
    try:
        voided = Bills(engine).void(oct_bill.bill_id, reason="meter reading corrected")
    finally:
        engine.dispose()
    assert voided.status.value == "voided" and voided.due_fen == 0
    bill_month(billing, "oct-rebill", 10, day(2026, 11, 15))
    new_id = billing.scalar(
        "SELECT bill_id FROM billing_bills WHERE replaces_bill_id = :b", b=oct_bill.bill_id
    )
    old = billing.stub.GetBill(
        billing_pb2.GetBillRequest(bill_id=oct_bill.bill_id), timeout=CALL_TIMEOUT
    )
    assert old.status == billing_pb2.BILL_STATUS_VOIDED and old.amount_due.fen == 0
    assert billing.scalar("SELECT count(*) FROM billing_bills WHERE bill_month = '2026-10'") == 2
    live = billing.stub.ListBills(
        billing_pb2.ListBillsRequest(account=ACCOUNT), timeout=CALL_TIMEOUT
    )
    assert [b.bill_id for b in live.bills] == [new_id, sep_bill.bill_id]

    # Unknown accounts are NOT_FOUND, as the proto says.
    with pytest.raises(grpc.RpcError) as stranger:
        billing.stub.GetArrears(
            billing_pb2.GetArrearsRequest(account=common_pb2.AccountRef(account_id="X")),
            timeout=CALL_TIMEOUT,
        )
    assert stranger.value.code() is grpc.StatusCode.NOT_FOUND


def quote_and_tariffs_through_the_bus(billing):
    quoted = billing.stub.Quote(
        billing_pb2.QuoteRequest(
            tariff_id="cn-beijing-residential", kwh=300, billing_date=day(2026, 5, 1)
        ),
        timeout=CALL_TIMEOUT,
    )
    assert quoted.total.fen == 14949 and len(quoted.lines) == 2  # FACTS §3a

    shipped = billing.stub.GetTariff(
        billing_pb2.GetTariffRequest(tariff_id="cn-beijing-residential", as_of=day(2026, 5, 1)),
        timeout=CALL_TIMEOUT,
    )
    raised = billing_pb2.Tariff()
    raised.CopyFrom(shipped)
    raised.effective_from.CopyFrom(day(2027, 1, 1))
    raised.energy_price.value = "0.5000"
    stored = billing.stub.PutTariff(
        billing_pb2.PutTariffRequest(tariff=raised), timeout=CALL_TIMEOUT
    )
    assert stored == raised
    again = billing.stub.PutTariff(
        billing_pb2.PutTariffRequest(tariff=raised), timeout=CALL_TIMEOUT
    )
    assert again == stored  # idempotent
    back = billing.stub.GetTariff(
        billing_pb2.GetTariffRequest(tariff_id="cn-beijing-residential", as_of=day(2027, 3, 1)),
        timeout=CALL_TIMEOUT,
    )
    assert back == raised
    later = billing.stub.Quote(
        billing_pb2.QuoteRequest(
            tariff_id="cn-beijing-residential", kwh=100, billing_date=day(2027, 3, 1)
        ),
        timeout=CALL_TIMEOUT,
    )
    assert later.total.fen == 5000

    versions = billing.stub.ListTariffs(
        billing_pb2.ListTariffsRequest(region="北京", all_versions=True), timeout=CALL_TIMEOUT
    )
    assert [t.effective_from.year for t in versions.tariffs][-1] == 2027
    first_page = billing.stub.ListTariffs(
        billing_pb2.ListTariffsRequest(page=common_pb2.PageRequest(page_size=3)),
        timeout=CALL_TIMEOUT,
    )
    assert len(first_page.tariffs) == 3 and first_page.page.next_page_token == "3"

    bad = billing_pb2.Tariff()
    bad.CopyFrom(raised)
    del bad.tiers[:]
    bad.tiers.add(level=1, up_to_kwh=400, surcharge=common_pb2.Decimal(value="0"))
    bad.tiers.add(level=2, up_to_kwh=240, surcharge=common_pb2.Decimal(value="0.05"))
    with pytest.raises(grpc.RpcError) as refused:
        billing.stub.PutTariff(billing_pb2.PutTariffRequest(tariff=bad), timeout=CALL_TIMEOUT)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "tiers" in refused.value.details()
    with pytest.raises(grpc.RpcError) as missing:
        billing.stub.Quote(billing_pb2.QuoteRequest(tariff_id="nope", kwh=1), timeout=CALL_TIMEOUT)
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND


def powerbus(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "powerbus.bus", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_the_bill_commands(billing_factory, tmp_path):
    billing = billing_factory(accounts=30, closed_every=10)
    bus = billing.bus.grpc

    quoted = powerbus(
        "bill",
        "quote",
        "--tariff",
        "cn-beijing-residential",
        "--kwh",
        "300",
        "--date",
        "2026-05-01",
        "--bus",
        bus,
    )
    assert quoted.returncode == 0, quoted.stderr
    assert "149.49" in quoted.stdout and "合计 Total" in quoted.stdout
    assert "第2档" in quoted.stdout and "kWh" in quoted.stdout
    assert max(len(line) for line in quoted.stdout.splitlines()) <= 80
    as_json = json.loads(
        powerbus(
            "bill",
            "quote",
            "--tariff",
            "cn-jiangsu-residential-tou",
            "--tou",
            "peak=300,valley=120",
            "--date",
            "2026-07-01",
            "--bus",
            bus,
            "--json",
        ).stdout
    )
    assert as_json["total_fen"] == sum(x["amount_fen"] for x in as_json["lines"])
    bad = powerbus(
        "bill", "quote", "--tariff", "cn-beijing-residential", "--tou", "noon=1", "--bus", bus
    )
    assert bad.returncode == 1 and "--tou: unknown period 'noon'" in bad.stderr

    accounts = tmp_path / "accounts.txt"
    accounts.write_text("\n".join(account_id(n) for n in range(1, 31)) + "\n")
    run = powerbus(
        "bill",
        "run",
        "--period",
        "2026-10",
        "--accounts-file",
        str(accounts),
        "--bus",
        bus,
        "--interval",
        "0.2",
    )
    assert run.returncode == 0, run.stderr
    assert "run 2026-10: succeeded; 27 bills issued" in run.stdout
    assert "27/30" not in run.stdout  # the bar is drawn on stderr
    again = json.loads(
        powerbus(
            "bill",
            "run",
            "--period",
            "2026-10",
            "--accounts-file",
            str(accounts),
            "--bus",
            bus,
            "--json",
        ).stdout
    )
    assert again["bills_issued"] == 27 and again["accounts_skipped"] == 3

    bill_id = billing.scalar("SELECT bill_id FROM billing_bills WHERE account_id = 'A0000001'")
    shown = powerbus("bill", "show", bill_id, "--bus", bus)
    assert shown.returncode == 0, shown.stderr
    assert "A0000001" in shown.stdout and "2026-10-01 – 2026-11-01" in shown.stdout
    assert max(len(line) for line in shown.stdout.splitlines()) <= 80
    data = json.loads(powerbus("bill", "show", bill_id, "--bus", bus, "--json").stdout)
    assert data["status"] == "issued" and data["due_fen"] == data["total_fen"] > 0
    missing = powerbus("bill", "show", "nope", "--bus", bus)
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stderr

    # Correction by cancel-and-rebill through VoidBill and the CLI: the original is kept,
    # voided with the reason, and the replacement names it.
    voided = powerbus(
        "bill", "void", bill_id, "--reason", "meter reading corrected", "--rebill", "--bus", bus
    )
    assert voided.returncode == 0, voided.stderr
    new_id = billing.scalar(
        "SELECT bill_id FROM billing_bills WHERE replaces_bill_id = :b", b=bill_id
    )
    assert f"replaced by bill {new_id}: {data['total_fen'] / 100:.2f} yuan" in voided.stdout
    old = billing.stub.GetBill(billing_pb2.GetBillRequest(bill_id=bill_id), timeout=CALL_TIMEOUT)
    assert old.status == billing_pb2.BILL_STATUS_VOIDED and old.amount_due.fen == 0
    assert old.void_reason == "meter reading corrected" and old.HasField("voided_at")
    new = billing.stub.GetBill(billing_pb2.GetBillRequest(bill_id=new_id), timeout=CALL_TIMEOUT)
    assert new.replaces_bill_id == bill_id and new.status == billing_pb2.BILL_STATUS_ISSUED
    twice = billing.stub.VoidBill(
        billing_pb2.VoidBillRequest(bill_id=bill_id, reason="again"), timeout=CALL_TIMEOUT
    )
    assert twice.void_reason == "meter reading corrected"  # voiding twice changes nothing
    for request, code in [
        (billing_pb2.VoidBillRequest(bill_id=new_id), grpc.StatusCode.INVALID_ARGUMENT),
        (billing_pb2.VoidBillRequest(bill_id="nope", reason="x"), grpc.StatusCode.NOT_FOUND),
    ]:
        with pytest.raises(grpc.RpcError) as refused:
            billing.stub.VoidBill(request, timeout=CALL_TIMEOUT)
        assert refused.value.code() is code
    blank = powerbus("bill", "void", new_id, "--reason", " ", "--bus", bus)
    assert blank.returncode == 1 and "--reason" in blank.stderr

    # The same node, through the bus with a stub (one set-up for both).
    quote_and_tariffs_through_the_bus(billing)
