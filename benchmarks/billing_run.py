"""One billing run of 100,000 accounts end to end through the bus.

Real processes on loopback: a bus, the test-only CRM and metering nodes of
``tests/billing_node/sim_nodes.py`` (real SDK nodes serving ``powerbus.crm.v1.Customers``
and ``powerbus.metering.v1.Metering`` from data generated in memory; the real metering and
CRM nodes have not landed), and one billing node on a SQLite file. The run asks CRM for
every account (GetAccount, through the bus), metering for usage (SummarizeUsage, 500
meters a call, through the bus), prices each bill with the Decimal engine and writes it
in batches. Reported: accounts per second from StartBillingRun to the run's finish, the
billing node's peak RSS (VmHWM), and a check that the database holds exactly one bill per
billed account.

``python -m benchmarks.billing_run [ACCOUNTS]``
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import grpc
import sqlalchemy as sa

from benchmarks.harness import environment, write_result
from powerbus.billing.v1 import billing_pb2, billing_pb2_grpc
from powerbus.bus.kernel.database import create_engine
from powerbus.bus.kernel.supervisor import ProcessGroup
from powerbus.common.v1 import common_pb2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "billing_node"))
from sim_nodes import account_id, start_sim

ACCOUNTS = 100_000
TOU_EVERY = 5  # every fifth account on Jiangsu TOU (annual tiers), the rest Beijing tiers
CLOSED_EVERY = 50
BATCH = 1000
CONCURRENCY = 64
TIMEOUT_S = 900.0


def _period() -> common_pb2.Period:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("Asia/Shanghai")
    period = common_pb2.Period()
    period.start.FromDatetime(datetime(2026, 10, 1, tzinfo=zone))
    period.end.FromDatetime(datetime(2026, 11, 1, tzinfo=zone))
    return period


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def run(accounts: int) -> dict[str, object]:
    """Start the processes, bill ``accounts`` accounts, stop everything."""
    with tempfile.TemporaryDirectory(prefix="billing-run-bench-") as tmp:
        directory = Path(tmp)
        db_url = f"sqlite:///{directory / 'billing.db'}"
        group = ProcessGroup(directory=directory)
        try:
            bus = group.start_bus()
            start_sim(
                group,
                "crm",
                bus=bus.grpc,
                node_id="sim-crm",
                accounts=accounts,
                tou_every=TOU_EVERY,
                closed_every=CLOSED_EVERY,
            )
            start_sim(group, "metering", bus=bus.grpc, node_id="sim-metering")
            node = group.start_node(
                "billing",
                bus=bus,
                node_id="billing-1",
                db=db_url,
                batch_size=BATCH,
                concurrency=CONCURRENCY,
                call_timeout="30s",
            )
            ids = [account_id(n) for n in range(1, accounts + 1)]
            request = billing_pb2.StartBillingRunRequest(
                run_id="bench", period=_period(), account_ids=ids
            )
            with grpc.insecure_channel(bus.grpc) as channel:
                stub = billing_pb2_grpc.BillingStub(channel)
                began = time.perf_counter()
                stub.StartBillingRun(request, timeout=60)
                poll = billing_pb2.GetBillingRunRequest(run_id="bench")
                while True:
                    result = stub.GetBillingRun(poll, timeout=10)
                    if result.state in (3, 4, 5):
                        break
                    if time.perf_counter() - began > TIMEOUT_S:
                        raise TimeoutError(f"run not finished after {TIMEOUT_S}s: {result}")
                    time.sleep(0.25)
                seconds = time.perf_counter() - began
            peak = _peak_rss_mib(node.pid)
            log_tail = node.stderr_tail(8)
        finally:
            group.close()
        engine = create_engine(db_url)
        try:
            with engine.connect() as conn:
                bills = conn.execute(sa.text("SELECT count(*) FROM billing_bills")).scalar_one()
                distinct = conn.execute(
                    sa.text("SELECT count(DISTINCT account_id) FROM billing_bills")
                ).scalar_one()
        finally:
            engine.dispose()
    if accounts < ACCOUNTS:
        print(log_tail)
    expected = accounts - accounts // CLOSED_EVERY
    if result.state != billing_pb2.BILLING_RUN_STATE_SUCCEEDED or not bills == distinct == expected:
        raise AssertionError(
            f"run {result.state}: {bills} bills, {distinct} accounts, want {expected}"
        )
    return {
        "accounts": accounts,
        "bills_issued": result.bills_issued,
        "accounts_skipped": result.accounts_skipped,
        "seconds": round(seconds, 2),
        "accounts_per_s": round(accounts / seconds, 1),
        "bills_in_db": bills,
        "billing_node_peak_rss_mib": round(peak, 1),
        "total_billed_fen": result.total_billed.fen,
    }


def main(accounts: int = ACCOUNTS) -> Path:
    # The machine is shared: the load around the run says how much of it we had.
    load_before = os.getloadavg()[0]
    figures = run(accounts)
    figures["load_average_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    data = {
        "benchmark": "billing_run",
        "what": f"one billing run of {accounts:,} accounts end to end through the bus: CRM "
        "GetAccount per account and metering SummarizeUsage per 500 meters, both from the "
        "test-only simulator nodes of tests/billing_node/sim_nodes.py (real SDK nodes, data "
        f"in memory); Decimal engine; SQLite; batches of {BATCH}, {CONCURRENCY} CRM calls in "
        "flight; 1 in 5 accounts TOU with annual tiers, 1 in 50 closed",
        "environment": environment(),
        **figures,
        "target": "none set by issue 11 (it asks for accounts/s and peak memory)",
    }
    table = "\n".join(
        [
            "| accounts | bills | seconds | accounts/s | billing node peak RSS |",
            "|---:|---:|---:|---:|---:|",
            f"| {accounts:,} | {figures['bills_in_db']:,} | {figures['seconds']} | "
            f"{figures['accounts_per_s']:,} | {figures['billing_node_peak_rss_mib']} MiB |",
            "",
            f"- 1-minute load average before and after (2 shared cores): "
            f"{figures['load_average_1m']}",
            "",
            "- usage and accounts come from the test-only simulator nodes "
            "(tests/billing_node/sim_nodes.py) through the bus; exactly one bill per billed "
            "account in the database",
        ]
    )
    return write_result("billing_run", data, table)


if __name__ == "__main__":
    print(f"wrote {main(int(sys.argv[1]) if len(sys.argv) > 1 else ACCOUNTS)}")
