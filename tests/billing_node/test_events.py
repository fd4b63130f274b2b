"""Billing's events end to end: a billing node started with ``--events-in`` stages
``billing.bill.issued`` and ``billing.run.finished`` in its outbox with the bills, and a
real SDK subscriber on the bus's ``events_out`` receives each exactly once — a repeated
run, which issues nothing, publishes no bill again."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from billing_support import period
from sim_nodes import account_id

from powerbus.billing.v1 import billing_pb2
from powerbus.bus.kernel.database import create_engine
from powerbus.events.v1 import events_pb2
from powerbus.nodes.testing.event_capture import capture

ACCOUNTS = 12


def test_each_issued_bill_is_published_exactly_once(billing_factory):
    billing = billing_factory(accounts=ACCOUNTS, batch_size=5, events=True)
    ids = [account_id(n) for n in range(1, ACCOUNTS + 1)]
    for run_id in ("oct", "oct-again"):  # the second issues nothing: no bill event again
        billing.stub.StartBillingRun(
            billing_pb2.StartBillingRunRequest(
                run_id=run_id, period=period(2026, 10), account_ids=ids
            ),
            timeout=10,
        )
        billing.wait_run(run_id)

    def both_runs(got):
        return sum(e.topic == "billing.run.finished" for e in got) >= 2

    envelopes = asyncio.run(capture(billing.bus, ["billing."], done=both_runs))
    issued = []
    finished = []
    for env in envelopes:
        assert env.source == "billing-1"
        if env.topic == "billing.bill.issued":
            issued.append(events_pb2.BillIssued())
            assert env.payload.Unpack(issued[-1])
        else:
            assert env.topic == "billing.run.finished"
            finished.append(events_pb2.BillingRunFinished())
            assert env.payload.Unpack(finished[-1])
    assert sorted(e.account.account_id for e in issued) == ids
    bills = {b for (b,) in _bills(billing)}
    assert {e.bill_id for e in issued} == bills and len(issued) == len(bills)
    total = sum(e.total.fen for e in issued)
    assert total == billing.scalar("SELECT sum(total_fen) FROM billing_bills") and total > 0
    assert all(e.run_id == "oct" and e.due_date.month == 11 and e.kwh > 0 for e in issued)
    assert [(f.run_id, f.bills_issued, f.total_billed.fen) for f in finished] == [
        ("oct", ACCOUNTS, total),
        ("oct-again", 0, 0),
    ]
    assert all(f.state == billing_pb2.BILLING_RUN_STATE_SUCCEEDED for f in finished)
    # Sequences are gapless and each appears once: nothing was published twice.
    assert [e.sequence for e in envelopes] == list(range(1, len(envelopes) + 1))


def _bills(billing):
    engine = create_engine(billing.db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT bill_id FROM billing_bills")))
    finally:
        engine.dispose()
