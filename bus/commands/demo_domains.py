"""The domain half of ``powerbus demo``: CRM, billing, payment, two banks.

A CRM node seeded with a customer on each of the farm's DL/T 645 meters, a billing node
that bills last month from the metering node's SummarizeUsage, a payment node, and per
bank a simulator (``powerbus sim bank``) plus the bank node between it and the bus.

Last month is billable although the farm is polled in real time: on first contact the
metering node reads back the month-start daily freezes the DL/T 645 meters keep
(nodes/metering/settlement.py), and a month is billed from the registers frozen at its
boundaries, as a 采集 system bills it. The farm's SDM and pulse meters keep no history,
so a month they were not polled from its start cannot be billed from them ("usage
incomplete", as a real system reports it): the demo's customers are on the DL/T 645
household meters, half the farm; the Modbus half is polled and shown on the dashboard.
Households' meters count on the residential 峰谷 program, so their peak/valley tariffs
split last month from the frozen rate registers.
"""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import grpc
from typer import echo

from powerbus.adapters.bank import LineKind, parse_statement
from powerbus.billing.v1 import billing_pb2, billing_pb2_grpc
from powerbus.bus.commands.demo_security import DemoSecurity, demo_channel
from powerbus.bus.kernel.errors import PowerbusError
from powerbus.bus.kernel.supervisor import (
    NODE_COMMAND,
    BusHandle,
    NodeHandle,
    ProcessError,
    ProcessGroup,
    ProcessHandle,
)
from powerbus.common.v1 import common_pb2
from powerbus.metering.v1 import metering_pb2, metering_pb2_grpc

__all__ = ["BANKS", "COLLECTIONS", "CUSTOMERS", "DomainDemo", "last_month", "show_domains", "yuan"]

BANKS = ("0102", "0103")
CUSTOMERS = 12
FARM_METERS = 2 * CUSTOMERS
"""Half DL/T 645 (the customers' meters), half Modbus: the farm alternates its lines."""
COLLECTIONS = 12  # per bank: enough to show each kind of outcome, over in a few seconds
_WAIT = 30.0  # seconds: bound of each wait on the demo's processes
ZONE = ZoneInfo("Asia/Shanghai")


def last_month(today: date) -> tuple[str, datetime, datetime]:
    """The month before ``today``'s as ``YYYY-MM`` and its local start and end."""
    first = today.replace(day=1)
    start = (first - timedelta(days=1)).replace(day=1)
    begin = datetime(start.year, start.month, 1, tzinfo=ZONE)
    end = datetime(first.year, first.month, 1, tzinfo=ZONE)
    return start.strftime("%Y-%m"), begin, end


@dataclass
class DomainDemo:
    """The domain processes of the demo, started in parallel where they can be."""

    group: ProcessGroup
    work: Path
    bus: BusHandle
    meters_file: Path
    security: DemoSecurity | None = None
    """mTLS and access control (the default demo); None runs it in plaintext."""
    sims: dict[str, ProcessHandle] = field(default_factory=dict)
    nodes: list[NodeHandle] = field(default_factory=list)

    @property
    def customer_meters_file(self) -> Path:
        """The farm's DL/T 645 meters (its meters file's lines of them), one customer on
        each: what the CRM node is seeded from."""
        return self.work / "customer-meters.csv"

    @property
    def accounts_file(self) -> Path:
        """The seeded accounts (the CRM seed numbers them 3300000001…), one a line; after
        the bill run, the billed ones, for which the bank simulators collect."""
        return self.work / "accounts.txt"

    def start(self) -> list[NodeHandle]:
        """Launch the CRM, billing and payment nodes together (each migrates its own
        database); ``wait_ready()`` on each returned handle (also kept in ``nodes``)
        waits for its registration."""
        self.accounts_file.write_text(
            "".join(f"{3300000000 + n}\n" for n in range(1, CUSTOMERS + 1)), encoding="utf-8"
        )
        work = self.work
        self._write_customer_meters()
        events_in = str(self.bus.state["events_in"])
        nodes = {
            "crm": {"seed": str(CUSTOMERS), "meters": str(self.customer_meters_file)},
            "billing": {"events_in": events_in},
            "payment": {"apply_interval": "0.5s", "events_in": events_in},
        }
        handles = []
        for kind, extra in nodes.items():
            node_id = f"{kind}-1"
            state_file = work / f"{node_id}.json"
            flags: dict[str, str] = {
                "bus": self.bus.grpc,
                "listen": "127.0.0.1:0",
                "id": node_id,
                "state_file": str(state_file),
                "db": f"sqlite:///{work / f'{kind}.db'}",
                **extra,
                **(self.security.node_args(node_id) if self.security else {}),
            }
            args = [*NODE_COMMAND, kind]
            for key, value in flags.items():
                args += [f"--{key.replace('_', '-')}", value]
            handle = NodeHandle(
                kind=kind, node_id=node_id, name=node_id, args=args,
                directory=work, state_file=state_file,
            )  # fmt: skip
            self.group.handles.append(handle)
            handles.append(handle)
        self.nodes = handles
        return handles

    def start_banks(self, rate: float, count: int = COLLECTIONS) -> None:
        """Per bank: the simulator (it waits for the bank node to dial it), then the node."""
        listens = {}
        for code in BANKS:
            listens[code] = f"127.0.0.1:{free_port()}"
            state = self.work / f"bank-sim-{code}.json"
            args = [sys.executable, "-m", "powerbus.bus", "sim", "bank", "--bank", code]
            args += ["--connect", listens[code], "--rate", str(rate), "--seed", code]
            args += ["--count", str(count)]
            args += ["--accounts-file", str(self.accounts_file), "--state-file", str(state)]
            args += ["--drop-dir", str(self.work / "drop"), "--statement-interval", "1"]
            args += ["--log-level", "WARNING"]
            handle = ProcessHandle(
                name=f"bank-sim-{code}", args=args, directory=self.work, state_file=state
            )
            self.group.handles.append(handle)
            self.sims[code] = handle
        for code, sim in self.sims.items():
            sim.wait_ready()
            node_id = f"bank-{code}"
            self.group.start_node(
                "bank", bus=self.bus, node_id=node_id, bank=code,
                listen_bank=listens[code], bank_address=str(sim.state["listen"]),
                **(self.security.node_flags(node_id) if self.security else {}),
            )  # fmt: skip

    def wait_for_readback(self, start: datetime, end: datetime) -> int:
        """Wait (bounded) until the metering node has the DL/T 645 meters' month-start
        freezes for [start, end): its first poll reads them. Returns how many of those
        meters it has; fewer than all after the wait means some did not answer."""
        meters = self.dlt645_meters()
        period = common_pb2.Period()
        period.start.FromDatetime(start)
        period.end.FromDatetime(end)
        request = metering_pb2.SummarizeUsageRequest(
            meters=[common_pb2.MeterRef(meter_id=m) for m in meters], period=period
        )
        deadline = time.monotonic() + _WAIT
        complete = 0
        with demo_channel(self.bus.grpc, self.security) as channel:
            stub = metering_pb2_grpc.MeteringStub(channel)
            while time.monotonic() < deadline:
                # SummarizeUsage is NOT_FOUND for a meter with nothing stored: asked only
                # once every meter was polled, so the demo's wait raises no error alert.
                try:
                    if set(meters) <= polled_meters(stub):
                        reply = stub.SummarizeUsage(request, timeout=5.0)
                        complete = sum(1 for s in reply.summaries if s.complete)
                except grpc.RpcError:
                    complete = 0
                if complete == len(meters):
                    break
                time.sleep(0.5)
        return complete

    def dlt645_meters(self) -> list[str]:
        """The farm's DL/T 645 meters (the ones that keep history), from its meters file."""
        return [row["meter_id"] for row in self._dlt645_rows()]

    def _dlt645_rows(self) -> list[dict[str, str]]:
        with self.meters_file.open(encoding="utf-8", newline="") as handle:
            return [r for r in csv.DictReader(handle) if r["protocol"] == "dlt645"]

    def _write_customer_meters(self) -> None:
        rows = self._dlt645_rows()[:CUSTOMERS]
        with self.customer_meters_file.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)

    def bill(self, period: str) -> dict[str, object]:
        """``powerbus bill run`` for the month over every account CRM lists, as its JSON."""
        out = self._cli("bill", "run", "--period", period, "--json", "--interval", "0.2")
        try:  # the JSON, then whatever the command logged on stderr
            data: dict[str, object] = json.JSONDecoder().raw_decode(out[out.index("{") :])[0]
        except ValueError:
            raise ProcessError(f"powerbus bill run: {out[-500:]}") from None
        return data

    def bills(self, period_start: datetime) -> list[billing_pb2.Bill]:
        """The issued bills of the seeded accounts for the month starting then."""
        found = []
        with demo_channel(self.bus.grpc, self.security) as channel:
            stub = billing_pb2_grpc.BillingStub(channel)
            for account in self.accounts_file.read_text(encoding="utf-8").split():
                request = billing_pb2.ListBillsRequest(
                    account=common_pb2.AccountRef(account_id=account)
                )
                try:
                    reply = stub.ListBills(request, timeout=5.0)
                except grpc.RpcError as error:
                    if error.code() is grpc.StatusCode.NOT_FOUND:  # never billed
                        continue
                    raise ProcessError(f"billing ListBills: {error.details()}") from None
                found += [
                    b
                    for b in reply.bills
                    if b.period.start.ToDatetime().replace(tzinfo=ZoneInfo("UTC")) == period_start
                ]
        return found

    def wait_for_statement(self, code: str, count: int = COLLECTIONS) -> bool:
        """Wait (bounded) until the bank's statement lists all ``count`` collections it
        was to send (each settled: success, failure or reversal), so the reconciliation
        compares finished business; False when the wait ran out."""
        deadline = time.monotonic() + _WAIT
        while time.monotonic() < deadline:
            collections = 0
            for path in (self.work / "drop").glob(f"{code}_COLLECTION_*"):
                try:
                    statement = parse_statement(path.read_bytes(), file_name=path.name)
                except (PowerbusError, OSError):  # being rewritten as we read: next round
                    collections = -1
                    break
                collections += sum(1 for x in statement.lines if x.kind is LineKind.COLLECTION)
            if collections >= count:
                return True
            time.sleep(0.3)
        return False

    def settlement_dates(self, code: str) -> list[date]:
        """The days the bank wrote a statement for (``CODE_COLLECTION_YYYYMMDD.*`` in the
        drop folder): the bank's day, which need not be today here (time zones, cut-off)."""
        for _ in range(50):  # the first statement comes within a second or so; 5 s at most
            if any((self.work / "drop").glob(f"{code}_COLLECTION_*")):
                break
            time.sleep(0.1)
        days = set()
        for path in (self.work / "drop").glob(f"{code}_COLLECTION_*"):
            stamp = path.stem.rsplit("_", 1)[-1]
            try:
                days.add(datetime.strptime(stamp, "%Y%m%d").date())
            except ValueError:
                continue  # not a statement of ours
        return sorted(days)

    def reconcile(self, code: str, day: date) -> str:
        """``powerbus reconcile`` for one bank and settlement date, as the table."""
        return self._cli("reconcile", "--bank", code, "--date", day.isoformat())

    def _cli(self, *args: str) -> str:
        command = [sys.executable, "-m", "powerbus.bus", *args, "--bus", self.bus.grpc]
        try:
            env = self.security.client_env() if self.security else None
            done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
        except subprocess.TimeoutExpired:
            raise ProcessError(f"powerbus {' '.join(args)}: no answer in 120 s") from None
        return (done.stdout + done.stderr).rstrip()


def free_port() -> int:
    """A port free on 127.0.0.1 now: the bank node listens there for its simulator, which
    must know the address before the node starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def polled_meters(stub: metering_pb2_grpc.MeteringStub) -> set[str]:
    """The meters the metering node has read at least once (``last_read_at`` set)."""
    polled: set[str] = set()
    page = common_pb2.PageRequest()
    while True:
        reply = stub.ListMeters(metering_pb2.ListMetersRequest(page=page), timeout=5.0)
        polled |= {m.meter_id for m in reply.meters if m.HasField("last_read_at")}
        if not reply.page.next_page_token:
            return polled
        page = common_pb2.PageRequest(page_token=reply.page.next_page_token)


def yuan(fen: int) -> str:
    """Integer fen as yuan with two decimals: ``14949`` → ``"149.49"``."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


def show_domains(domain: DomainDemo, period: str, start: datetime, end: datetime) -> None:
    """Bill last month, let both banks collect, reconcile each: printed as it goes,
    within 80 columns."""
    for node in domain.nodes:  # started with the others; the banner did not wait for them
        node.wait_ready()
    have = domain.wait_for_readback(start, end)
    echo(f"metering-1 read back the month-start freezes of {have} of "
         f"{len(domain.dlt645_meters())} DL/T 645 meters")  # fmt: skip
    echo(f"$ powerbus bill run --period {period}")
    run = domain.bill(period)
    errors = run.get("errors") or []
    assert isinstance(errors, list)
    echo(
        f"run {period}: {run['state']}; {run['bills_issued']} bills, "
        f"{yuan(int(str(run['total_billed_fen'])))} yuan, {float(str(run['total_kwh'])):.1f} kWh; "
        f"{len(errors)} not billed"
    )
    bills = domain.bills(start.astimezone(ZoneInfo("UTC")))
    for bill in bills[:5]:
        echo(
            f"  {bill.account.account_id}  {bill.tariff_id:<28}{bill.kwh:>9.1f} kWh"
            f"{yuan(bill.total.fen):>10} yuan"
        )
    for error in errors[:3]:
        echo(f"  not billed {error['account_id']}: {error['reason']}"[:79])
    if bills:  # the customers who got a bill come to pay it (others would be refused)
        domain.accounts_file.write_text(
            "".join(f"{b.account.account_id}\n" for b in bills), encoding="utf-8"
        )
    echo(f"banks {', '.join(BANKS)}: {COLLECTIONS} collections each, through the bank nodes")
    domain.start_banks(rate=4.0)
    for code in BANKS:
        if not domain.wait_for_statement(code):
            echo(f"bank {code}: its statement is not complete after {_WAIT:.0f} s")
        for day in domain.settlement_dates(code):
            echo(f"$ powerbus reconcile --bank {code} --date {day}")
            echo(domain.reconcile(code, day))
    after = domain.bills(start.astimezone(ZoneInfo("UTC")))
    statuses: dict[str, int] = {}
    for bill in after:
        name = billing_pb2.BillStatus.Name(bill.status).removeprefix("BILL_STATUS_").lower()
        statuses[name] = statuses.get(name, 0) + 1
    echo("bills now: " + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())))
