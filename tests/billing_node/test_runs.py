"""Billing runs end to end: CRM and metering simulators on a real bus, a real billing node,
bills counted in its database."""

from __future__ import annotations

from datetime import date

import grpc
import pytest
from conftest import CALL_TIMEOUT, period
from sim_nodes import account_id, kwh_of

from powerbus.billing.v1 import billing_pb2
from powerbus.common.v1 import common_pb2
from powerbus.nodes.billing.tariff import Usage, load_shipped, quote

OCT = period(2026, 10)


def start(billing, run_id, ids, *, when=OCT, **fields):
    request = billing_pb2.StartBillingRunRequest(run_id=run_id, period=when, account_ids=ids, **fields)
    return billing.stub.StartBillingRun(request, timeout=CALL_TIMEOUT)


def expected_fen(number: int) -> int:
    beijing = load_shipped().version("cn-beijing-residential", date(2026, 10, 1))
    return quote(beijing, Usage(kwh=kwh_of(number)), billing_date=date(2026, 10, 1)).total_fen


def test_a_run_bills_every_active_account_once_and_a_repeat_bills_nothing(billing_factory):
    billing = billing_factory(accounts=40, closed_every=10, batch_size=15)
    ids = [account_id(n) for n in range(1, 43)]  # 41 and 42 are unknown to CRM
    first = start(billing, "2026-10", ids)
    assert first.run_id == "2026-10" and first.accounts_total == 42

    run = billing.wait_run("2026-10")
    assert run.state == billing_pb2.BILLING_RUN_STATE_PARTIAL
    assert (run.bills_issued, run.accounts_skipped, run.accounts_failed) == (36, 4, 2)
    assert sorted(e.account_id for e in run.errors) == ["A0000041", "A0000042"]
    assert all("NOT_FOUND" in e.reason and not e.retriable for e in run.errors)
    billed = [n for n in range(1, 41) if n % 10]
    assert run.total_billed.fen == sum(expected_fen(n) for n in billed)

    again = start(billing, "2026-10", list(reversed(ids)))  # same parameters, any order
    assert again.state == billing_pb2.BILLING_RUN_STATE_PARTIAL and again.bills_issued == 36
    assert billing.scalar("SELECT count(*) FROM billing_bills") == 36
    assert billing.scalar("SELECT count(DISTINCT account_id) FROM billing_bills") == 36

    with pytest.raises(grpc.RpcError) as refused:
        start(billing, "2026-10", ids[:3])
    assert refused.value.code() is grpc.StatusCode.ALREADY_EXISTS

    rerun = start(billing, "2026-10-again", ids)
    rerun = billing.wait_run("2026-10-again")
    assert (rerun.bills_issued, rerun.accounts_skipped, rerun.accounts_failed) == (0, 40, 2)
    assert billing.scalar("SELECT count(*) FROM billing_bills") == 36


def test_a_bill_reads_back_with_its_lines_and_due_date(billing_factory):
    billing = billing_factory(accounts=3)
    start(billing, "r1", [account_id(3)], due_date=common_pb2.Date(year=2026, month=11, day=20))
    billing.wait_run("r1")
    bill_id = billing.scalar("SELECT bill_id FROM billing_bills WHERE account_id = 'A0000003'")
    bill = billing.stub.GetBill(billing_pb2.GetBillRequest(bill_id=bill_id), timeout=CALL_TIMEOUT)
    assert bill.status == billing_pb2.BILL_STATUS_ISSUED
    assert bill.total.fen == expected_fen(3) == sum(line.amount.fen for line in bill.lines)
    assert bill.amount_due.fen == bill.total.fen and bill.amount_paid.fen == 0
    assert (bill.due_date.year, bill.due_date.month, bill.due_date.day) == (2026, 11, 20)
    assert "电度电费" in bill.lines[0].description and "kWh" in bill.lines[0].description
    assert bill.kwh == pytest.approx(float(kwh_of(3)))


def test_a_tou_account_is_billed_on_the_split_metering_returns(billing_factory):
    billing = billing_factory(accounts=4, tou_every=2)
    start(billing, "tou", [account_id(2)])
    assert billing.wait_run("tou").bills_issued == 1
    bill_id = billing.scalar("SELECT bill_id FROM billing_bills")
    bill = billing.stub.GetBill(billing_pb2.GetBillRequest(bill_id=bill_id), timeout=CALL_TIMEOUT)
    periods = {u.period for u in bill.tou_usage}
    assert periods == {billing_pb2.TOU_PERIOD_PEAK, billing_pb2.TOU_PERIOD_VALLEY}
    # 峰 8–21 is 13 of 24 hours of a flat load.
    peak = next(u.kwh for u in bill.tou_usage if u.period == billing_pb2.TOU_PERIOD_PEAK)
    assert peak == pytest.approx(float(kwh_of(2)) * 13 / 24, abs=0.001)


def test_without_crm_on_the_bus_a_run_fails_and_says_why(billing_factory):
    billing = billing_factory(crm=False)
    start(billing, "no-crm", [account_id(1), account_id(2)])
    run = billing.wait_run("no-crm")
    assert run.state == billing_pb2.BILLING_RUN_STATE_FAILED
    assert run.bills_issued == 0 and run.accounts_failed == 2
    assert all("powerbus.crm.v1.Customers" in e.reason or "crm" in e.reason for e in run.errors)
    assert billing.scalar("SELECT count(*) FROM billing_bills") == 0


def test_a_run_without_account_ids_fails_naming_the_missing_crm_call(billing_factory):
    billing = billing_factory(accounts=2)
    start(billing, "all", [])
    run = billing.wait_run("all")
    assert run.state == billing_pb2.BILLING_RUN_STATE_FAILED
    assert "lists every active account" in run.errors[0].reason


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"run_id": ""}, "run_id"),
        ({"period": common_pb2.Period()}, "period"),
    ],
)
def test_bad_runs_are_refused_naming_the_field(billing_factory, fields, field):
    billing = billing_factory(accounts=1)
    request = billing_pb2.StartBillingRunRequest(run_id="x", period=OCT, account_ids=["A0000001"])
    for key, value in fields.items():
        if key == "period":
            request.period.CopyFrom(value)
        else:
            setattr(request, key, value)
    with pytest.raises(grpc.RpcError) as refused:
        billing.stub.StartBillingRun(request, timeout=CALL_TIMEOUT)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details().startswith(field)
