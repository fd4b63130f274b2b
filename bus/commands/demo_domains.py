"""The domain half of ``powerbus demo``: CRM, billing, payment, two banks.

A CRM node seeded from the meter farm's meters file, a billing node that bills a month
from the metering node's SummarizeUsage, a payment node, and per bank a simulator
(``powerbus sim bank``) plus the bank node between it and the bus. The farm's clock runs
in real time and the metering node stores 5-second intervals, so last month has no
readings: the bill run reports each account not billed and why (the open part of issue 11;
submitting a month of registers makes the node estimate 535,000 intervals per meter).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from powerbus.bus.kernel.supervisor import (
    NODE_COMMAND,
    BusHandle,
    NodeHandle,
    ProcessError,
    ProcessGroup,
    ProcessHandle,
)

__all__ = ["BANKS", "CUSTOMERS", "DomainDemo", "last_month"]

BANKS = ("0102", "0103")
CUSTOMERS = 12
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
    sims: dict[str, ProcessHandle] = field(default_factory=dict)

    @property
    def accounts_file(self) -> Path:
        """The seeded accounts (the CRM seed numbers them 3300000001…), one a line."""
        return self.work / "accounts.txt"

    def start(self) -> list[NodeHandle]:
        """Launch the CRM, billing and payment nodes together (each migrates its own
        database); ``wait_ready()`` on each returned handle waits for its registration."""
        self.accounts_file.write_text(
            "".join(f"{3300000000 + n}\n" for n in range(1, CUSTOMERS + 1)), encoding="utf-8"
        )
        work = self.work
        nodes = {
            "crm": {"seed": str(CUSTOMERS), "meters": str(self.meters_file)},
            "billing": {},
            "payment": {"apply_interval": "0.5s"},
        }
        handles = []
        for kind, extra in nodes.items():
            node_id = f"{kind}-1"
            state_file = work / f"{node_id}.json"
            flags = {
                "bus": self.bus.grpc,
                "listen": "127.0.0.1:0",
                "id": node_id,
                "state_file": str(state_file),
                "db": f"sqlite:///{work / f'{kind}.db'}",
                **extra,
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
        return handles

    def start_banks(self, rate: float) -> None:
        """Per bank: the simulator (it waits for the bank node to dial it), then the node."""
        listens = {}
        for code in BANKS:
            listens[code] = f"127.0.0.1:{free_port()}"
            state = self.work / f"bank-sim-{code}.json"
            args = [sys.executable, "-m", "powerbus.bus", "sim", "bank", "--bank", code]
            args += ["--connect", listens[code], "--rate", str(rate), "--seed", code]
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
            self.group.start_node(
                "bank", bus=self.bus, node_id=f"bank-{code}", bank=code,
                listen_bank=listens[code], bank_address=str(sim.state["listen"]),
            )  # fmt: skip

    def bill(self, period: str) -> str:
        """``powerbus bill run`` for the month over the seeded accounts; its summary."""
        return self._cli(
            "bill", "run", "--period", period, "--accounts-file", str(self.accounts_file)
        )

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
            done = subprocess.run(command, capture_output=True, text=True, timeout=120)
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
