"""One billing run of 100,000 accounts end to end through the bus, over the real nodes.

Real processes on loopback: a bus; a meter farm of DL/T 645 household meters
(``powerbus sim meters --lines dlt645``) on fast lines; the metering node polling it,
which on first contact reads back each meter's month-start daily freezes, as a 采集
system does, so last month is billable; the CRM node seeded with one household on each
meter (``--seed N --meters FILE``); and the billing node on a SQLite file. Set-up ends
when the metering database holds both month-start freezes of every meter; its time is
reported apart and is not part of the billing figure.

Then one ``StartBillingRun`` for last month naming no accounts: the billing node lists
every account from CRM (``ListAccounts``, through the bus), asks metering for usage
(``SummarizeUsage``, through the bus, in batches), prices each bill with the Decimal
engine and writes them in batches. Reported: accounts per second from StartBillingRun to
the run's finish, the billing node's peak RSS (VmHWM), accounts not billed and why, and a
check that the database holds exactly one bill per billed account. The metering node
keeps polling meanwhile, as it would in production.

``python -m benchmarks.billing_run [ACCOUNTS]``
"""

from __future__ import annotations

import collections
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import grpc
import sqlalchemy as sa

from benchmarks.harness import environment, write_result
from benchmarks.meter_farm import farm_process
from powerbus.billing.v1 import billing_pb2, billing_pb2_grpc
from powerbus.bus.commands.demo_domains import last_month
from powerbus.bus.kernel.database import chunked, create_engine
from powerbus.bus.kernel.supervisor import ProcessGroup, ProcessHandle
from powerbus.common.v1 import common_pb2
from powerbus.nodes.metering.store import FROZEN_FORWARD_KWH, ReadingStore

ACCOUNTS = 100_000
METERS_PER_LINE = 200
BAUD = 115_200  # fast lines: acquisition is set-up here, not what is measured
BATCH = 1000
CONCURRENCY = 64
SETUP_TIMEOUT_S = 1800.0
RUN_TIMEOUT_S = 900.0
ZONE = ZoneInfo("Asia/Shanghai")
_SECOND = timedelta(seconds=1)  # a freeze is stamped 00:00:00 on the 1st
_FINISHED = (
    billing_pb2.BILLING_RUN_STATE_SUCCEEDED,
    billing_pb2.BILLING_RUN_STATE_PARTIAL,
    billing_pb2.BILLING_RUN_STATE_FAILED,
)


def _interval(accounts: int) -> str:
    """The metering node's poll interval: short for a quick run; for a large farm long
    enough that its polls leave the machine to billing most of the time."""
    return "1m" if accounts <= 5_000 else "5m"


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def _start_farm(group: ProcessGroup, meters: int) -> ProcessHandle:
    gateways = max(1, -(-meters // METERS_PER_LINE))
    handle = farm_process(
        group.directory,
        "--meters", str(meters), "--gateways", str(gateways), "--lines", "dlt645",
        "--baud", str(BAUD),
    )  # fmt: skip
    group.handles.append(handle)
    handle.wait_ready(timeout=600)
    return handle


def _frozen_meters(db_url: str, meter_ids: list[str], start: datetime, end: datetime) -> int:
    """How many meters have their total forward register frozen at both ``start`` and
    ``end`` in the metering node's database."""
    engine = create_engine(db_url)
    try:
        store = ReadingStore(engine)
        have: collections.Counter[str] = collections.Counter()
        for at in (start, end):
            for chunk in chunked(meter_ids):
                found = store.registers(
                    chunk,
                    at,
                    at + _SECOND,
                    reading_types=[FROZEN_FORWARD_KWH[0]],
                )
                have.update({r.record.meter_id for r in found})
        return sum(1 for count in have.values() if count == 2)
    finally:
        engine.dispose()


def _wait_for_freezes(
    db_url: str, meter_ids: list[str], start: datetime, end: datetime, metering: ProcessHandle
) -> None:
    deadline = time.monotonic() + SETUP_TIMEOUT_S
    while (have := _frozen_meters(db_url, meter_ids, start, end)) < len(meter_ids):
        metering.check_exit()
        if time.monotonic() > deadline:
            raise TimeoutError(f"month-start freezes of {have} of {len(meter_ids)} meters")
        time.sleep(5.0)


def _run_billing(bus: str, period: common_pb2.Period) -> tuple[billing_pb2.BillingRun, float]:
    with grpc.insecure_channel(bus) as channel:
        stub = billing_pb2_grpc.BillingStub(channel)
        began = time.perf_counter()
        stub.StartBillingRun(
            billing_pb2.StartBillingRunRequest(run_id="bench", period=period), timeout=60
        )
        poll = billing_pb2.GetBillingRunRequest(run_id="bench")
        while (result := stub.GetBillingRun(poll, timeout=30)).state not in _FINISHED:
            if time.perf_counter() - began > RUN_TIMEOUT_S:
                raise TimeoutError(f"run not finished after {RUN_TIMEOUT_S}s: {result}")
            time.sleep(0.25)
        return result, time.perf_counter() - began


def _bills_in(db_url: str) -> tuple[int, int]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            bills = conn.execute(sa.text("SELECT count(*) FROM billing_bills")).scalar_one()
            distinct = conn.execute(
                sa.text("SELECT count(DISTINCT account_id) FROM billing_bills")
            ).scalar_one()
        return int(bills), int(distinct)
    finally:
        engine.dispose()


def run(accounts: int) -> dict[str, object]:
    """Start the processes, bill ``accounts`` accounts, stop everything."""
    name, start, end = last_month(datetime.now(ZONE).date())
    period = common_pb2.Period()
    period.start.FromDatetime(start)
    period.end.FromDatetime(end)
    with tempfile.TemporaryDirectory(prefix="billing-run-bench-") as tmp:
        directory = Path(tmp)
        metering_db = f"sqlite:///{directory / 'metering.db'}"
        billing_db = f"sqlite:///{directory / 'billing.db'}"
        group = ProcessGroup(directory=directory)
        try:
            began = time.perf_counter()
            bus = group.start_bus(log_level="WARNING")
            farm = _start_farm(group, accounts)
            meters_file = Path(str(farm.state["meters_file"]))
            meter_ids = [line.split(",", 1)[0] for line in meters_file.read_text().split()[1:]]
            metering = group.start_node(
                "metering", bus=bus, node_id="metering-1", meters=meters_file,
                db=metering_db, interval=_interval(accounts), log_level="WARNING",
                ready_timeout=600,
            )  # fmt: skip
            group.start_node(
                "crm", bus=bus, node_id="crm-1", seed=accounts, meters=meters_file,
                db=f"sqlite:///{directory / 'crm.db'}", log_level="WARNING", ready_timeout=600,
            )  # fmt: skip
            node = group.start_node(
                "billing", bus=bus, node_id="billing-1", db=billing_db, batch_size=BATCH,
                concurrency=CONCURRENCY, call_timeout="60s", log_level="WARNING",
            )  # fmt: skip
            _wait_for_freezes(metering_db, meter_ids, start, end, metering)
            setup_s = time.perf_counter() - began
            load_before = os.getloadavg()[0]
            result, seconds = _run_billing(bus.grpc, period)
            load_after = os.getloadavg()[0]
            peak = _peak_rss_mib(node.pid)
        finally:
            group.close()
        bills, distinct = _bills_in(billing_db)
    reasons = collections.Counter(e.reason.split(":")[0] for e in result.errors)
    if result.state != billing_pb2.BILLING_RUN_STATE_SUCCEEDED or not bills == distinct:
        raise AssertionError(
            f"run {billing_pb2.BillingRunState.Name(result.state)}: {bills} bills for "
            f"{distinct} accounts; not billed: {dict(reasons)}"
        )
    return {
        "accounts": accounts,
        "period": name,
        "meters": len(meter_ids),
        "setup_seconds": round(setup_s, 1),
        "bills_issued": result.bills_issued,
        "accounts_skipped": result.accounts_skipped,
        "accounts_not_billed": len(result.errors),
        "seconds": round(seconds, 2),
        "accounts_per_s": round(accounts / seconds, 1),
        "bills_in_db": bills,
        "billing_node_peak_rss_mib": round(peak, 1),
        "total_billed_fen": result.total_billed.fen,
        "load_average_1m": [round(load_before, 2), round(load_after, 2)],
    }


def main(accounts: int = ACCOUNTS) -> Path:
    figures = run(accounts)
    data = {
        "benchmark": "billing_run",
        "what": f"one billing run of {accounts:,} accounts end to end through the bus over the "
        "real nodes: a DL/T 645 meter farm (sim meters --lines dlt645, "
        f"{METERS_PER_LINE} meters a line at {BAUD} baud) polled by the metering node, which "
        "read back the month-start freezes; the CRM node seeded with one household a meter; "
        "the billing node listing accounts from CRM (ListAccounts) and usage from metering "
        f"(SummarizeUsage), Decimal engine, SQLite, batches of {BATCH}, {CONCURRENCY} calls in "
        "flight; the metering node keeps polling during the run",
        "environment": environment(),
        **figures,
        "target": "none set by issue 11 (it asks for accounts/s and peak memory)",
    }
    table = "\n".join(
        [
            "| accounts | bills | not billed | seconds | accounts/s | billing node peak RSS |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {accounts:,} | {figures['bills_in_db']:,} | {figures['accounts_not_billed']:,} | "
            f"{figures['seconds']} | {figures['accounts_per_s']:,} | "
            f"{figures['billing_node_peak_rss_mib']} MiB |",
            "",
            f"- period {figures['period']}; set-up (farm, metering node reading back every "
            f"meter's month-start freezes, CRM seeded): {figures['setup_seconds']} s, not part "
            "of the figure",
            f"- 1-minute load average at the run's start and end (2 shared cores): "
            f"{figures['load_average_1m']}",
            "- real nodes throughout: usage from the metering node over the farm's frozen "
            "registers, accounts from the CRM node; exactly one bill per billed account in the "
            "database",
        ]
    )
    return write_result("billing_run", data, table)


if __name__ == "__main__":
    print(f"wrote {main(int(sys.argv[1]) if len(sys.argv) > 1 else ACCOUNTS)}")
