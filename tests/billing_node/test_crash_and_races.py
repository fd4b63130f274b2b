"""The two proofs that a billing run never bills an account twice: a billing node killed
(SIGKILL) mid-run and the run finished by another, and two runs of one period at once on
two nodes sharing the database. Counts come from the database itself."""

from __future__ import annotations

import threading
import time

from billing_support import CALL_TIMEOUT, period
from sim_nodes import account_id

from powerbus.billing.v1 import billing_pb2
from powerbus.nodes.testing.sizes import sized

OCT = period(2026, 10)


def counts(billing):
    return (
        billing.scalar("SELECT count(*) FROM billing_bills WHERE status != 'voided'"),
        billing.scalar("SELECT count(DISTINCT account_id) FROM billing_bills"),
        billing.scalar("SELECT count(*) FROM billing_bills WHERE status = 'draft'"),
    )


def test_a_run_killed_mid_way_finishes_elsewhere_with_one_bill_per_account(billing_factory):
    accounts = sized(480, 5000)  # killed after 80: ten batches of 40 still to go
    billing = billing_factory(accounts=accounts, delay=0.1, batch_size=40, run_lease="1s")
    ids = [account_id(n) for n in range(1, accounts + 1)]
    request = billing_pb2.StartBillingRunRequest(run_id="crash", period=OCT, account_ids=ids)
    billing.stub.StartBillingRun(request, timeout=CALL_TIMEOUT)

    deadline = time.monotonic() + 30
    while billing.scalar("SELECT bills_issued FROM billing_runs") < 80:
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.05)
    billing.node.kill()
    done_before = billing.scalar("SELECT bills_issued FROM billing_runs")
    assert 80 <= done_before < accounts, "killed too late to prove anything"

    billing.start_node("billing-2")  # takes the run over once billing-1's lease lapses
    run = billing.wait_run("crash", timeout=60)
    assert run.state == billing_pb2.BILLING_RUN_STATE_SUCCEEDED
    assert counts(billing) == (accounts, accounts, 0)
    assert run.bills_issued == accounts and run.accounts_skipped == 0
    assert (
        billing.scalar("SELECT count(*) FROM billing_run_accounts WHERE state = 'billed'")
        == accounts
    )


def test_two_runs_of_one_period_at_once_bill_each_account_once(billing_factory):
    accounts = sized(300, 3000)  # twelve batches each: the two runs overlap
    billing = billing_factory(accounts=accounts, batch_size=25)
    second = billing.start_node("billing-2")
    stubs = [billing_factory.direct(billing.node), billing_factory.direct(second)]
    ids = [account_id(n) for n in range(1, accounts + 1)]
    errors: list[BaseException] = []

    def start(stub, run_id, order):
        try:
            request = billing_pb2.StartBillingRunRequest(
                run_id=run_id, period=OCT, account_ids=order
            )
            stub.StartBillingRun(request, timeout=CALL_TIMEOUT)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [
        threading.Thread(target=start, args=(stubs[0], "run-a", ids)),
        threading.Thread(target=start, args=(stubs[1], "run-b", ids[::-1])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(CALL_TIMEOUT)
    assert not errors
    a, b = billing.wait_run("run-a"), billing.wait_run("run-b")
    assert a.state == b.state == billing_pb2.BILLING_RUN_STATE_SUCCEEDED
    assert counts(billing) == (accounts, accounts, 0)
    assert a.bills_issued + b.bills_issued == accounts
    assert a.bills_issued + a.accounts_skipped == b.bills_issued + b.accounts_skipped == accounts
