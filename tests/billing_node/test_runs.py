"""Billing runs end to end: CRM and metering simulators on a real bus, a real billing node,
bills counted in its database. Each test starts four processes, so one set-up carries
several checks."""

from __future__ import annotations

from datetime import date

import grpc
import pytest
from billing_support import CALL_TIMEOUT, period
from sim_nodes import FLAT_TARIFF, TOU_TARIFF, account_id, kwh_of, split, tariff_of

from powerbus.billing.v1 import billing_pb2
from powerbus.common.v1 import common_pb2
from powerbus.nodes.billing.tariff import TouPeriod, Usage, load_shipped, quote

OCT = period(2026, 10)
DAY = date(2026, 10, 1)
TOU_EVERY = 7


def start(billing, run_id, ids, *, when=OCT, **fields):
    request = billing_pb2.StartBillingRunRequest(
        run_id=run_id, period=when, account_ids=ids, **fields
    )
    return billing.stub.StartBillingRun(request, timeout=CALL_TIMEOUT)


def expected_fen(number: int) -> int:
    """The bill computed here from the simulator's data with the engine's own quote()."""
    tariff_id = tariff_of(number, TOU_EVERY)
    version = load_shipped().version(tariff_id, DAY)
    if tariff_id == FLAT_TARIFF:
        usage = Usage(kwh=kwh_of(number))
    else:  # 峰 08–21 (13 h), 谷 21–08 (11 h) of a flat load
        parts = split(kwh_of(number), [("peak", 13 * 60), ("valley", 11 * 60)])
        usage = Usage(tou_kwh={TouPeriod(label): kwh for label, kwh in parts})
    return quote(version, usage, billing_date=DAY).total_fen


def test_a_run_bills_every_active_account_once_and_a_repeat_bills_nothing(billing_factory):
    billing = billing_factory(accounts=40, closed_every=10, tou_every=TOU_EVERY, batch_size=15)
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

    # The same run_id and parameters (in any order) is the same run.
    again = start(billing, "2026-10", list(reversed(ids)))
    assert again.state == billing_pb2.BILLING_RUN_STATE_PARTIAL and again.bills_issued == 36
    with pytest.raises(grpc.RpcError) as refused:
        start(billing, "2026-10", ids[:3])
    assert refused.value.code() is grpc.StatusCode.ALREADY_EXISTS

    # A new run for the period bills nothing twice.
    start(billing, "2026-10-again", ids)
    rerun = billing.wait_run("2026-10-again")
    assert (rerun.bills_issued, rerun.accounts_skipped, rerun.accounts_failed) == (0, 40, 2)
    assert billing.scalar("SELECT count(*) FROM billing_bills") == 36
    assert billing.scalar("SELECT count(DISTINCT account_id) FROM billing_bills") == 36

    # A bill reads back with its lines; a TOU bill with the split metering returned.
    for number in (3, 14):
        bill_id = billing.scalar(
            "SELECT bill_id FROM billing_bills WHERE account_id = :a", a=account_id(number)
        )
        bill = billing.stub.GetBill(
            billing_pb2.GetBillRequest(bill_id=bill_id), timeout=CALL_TIMEOUT
        )
        assert bill.status == billing_pb2.BILL_STATUS_ISSUED and bill.run_id == "2026-10"
        assert bill.total.fen == expected_fen(number)
        assert bill.total.fen == sum(x.amount.fen for x in bill.lines if not x.informational)
        assert bill.amount_due.fen == bill.total.fen and bill.amount_paid.fen == 0
        assert (bill.due_date.year, bill.due_date.month, bill.due_date.day) == (2026, 11, 15)
        assert bill.kwh == pytest.approx(float(kwh_of(number)))
        assert "kWh" in bill.lines[0].description
    assert bill.tariff_id == TOU_TARIFF
    assert {u.period for u in bill.tou_usage} == {
        billing_pb2.TOU_PERIOD_PEAK,
        billing_pb2.TOU_PERIOD_VALLEY,
    }

    # Without account ids a run bills every account CRM lists as billable: here the 36
    # open ones, each billed already for the month, so skipped.
    start(billing, "all", [])
    everyone = billing.wait_run("all")
    assert everyone.state == billing_pb2.BILLING_RUN_STATE_SUCCEEDED, everyone
    assert everyone.accounts_total == 36 and everyone.accounts_skipped == 36
    assert everyone.bills_issued == 0
    # ... and in a month not billed yet, bills each of them once.
    start(billing, "all-nov", [], when=period(2026, 11))
    november = billing.wait_run("all-nov")
    assert (november.accounts_total, november.bills_issued) == (36, 36), november

    # Bad requests are refused naming the field.
    for request, field in [
        (billing_pb2.StartBillingRunRequest(period=OCT, account_ids=ids), "run_id"),
        (billing_pb2.StartBillingRunRequest(run_id="x", account_ids=ids), "period"),
        (
            billing_pb2.StartBillingRunRequest(
                run_id="x", period=common_pb2.Period(start=OCT.start, end=OCT.start)
            ),
            "period",
        ),
    ]:
        with pytest.raises(grpc.RpcError) as bad:
            billing.stub.StartBillingRun(request, timeout=CALL_TIMEOUT)
        assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert bad.value.details().startswith(field)


def test_without_crm_on_the_bus_a_run_fails_and_says_why(billing_factory):
    billing = billing_factory(crm=False)
    start(billing, "no-crm", [account_id(1), account_id(2)])
    run = billing.wait_run("no-crm")
    assert run.state == billing_pb2.BILLING_RUN_STATE_FAILED
    assert run.bills_issued == 0 and run.accounts_failed == 2
    assert all("crm GetAccount" in e.reason and e.retriable for e in run.errors)
    assert billing.scalar("SELECT count(*) FROM billing_bills") == 0
