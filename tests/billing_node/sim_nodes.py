"""Test-only CRM and metering nodes: real SDK nodes serving ``powerbus.crm.v1.Customers``
(GetAccount, ListAccounts) and ``powerbus.metering.v1.Metering`` (SummarizeUsage) from
data generated in memory. The real CRM and metering nodes bill in the demo and in
``benchmarks/billing_run.py``; these tests use the simulators because every expected bill
is then a pure function of the account number, and a thousand accounts start in a second.

Run as ``python sim_nodes.py crm|metering --bus HOST:PORT --id ID --state-file F
--accounts N [...]``; :func:`start_sim` does that under a test's process group.

The data is a pure function of the account number, so a test can compute every expected
bill: account ``A0000001`` has meter ``M0000001`` and uses :func:`kwh_of` kWh, spread
evenly over the minutes of the day (a flat load), so each TOU window gets kWh in proportion
to its minutes.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from powerbus.bus.kernel.addresses import parse_host_port
from powerbus.bus.kernel.errors import NotFound
from powerbus.bus.kernel.lifecycle import run_event_loop
from powerbus.bus.kernel.supervisor import NODE_COMMAND, ProcessGroup, ProcessHandle
from powerbus.common.v1 import common_pb2
from powerbus.crm.v1 import crm_pb2, crm_pb2_grpc
from powerbus.metering.v1 import metering_pb2, metering_pb2_grpc
from powerbus.nodes.sdk.config import NodeConfig
from powerbus.nodes.sdk.node import Node
from powerbus.nodes.sdk.process import run_node

MILLI = Decimal("0.001")
TOU_TARIFF = "cn-jiangsu-residential-tou"
FLAT_TARIFF = "cn-beijing-residential"
HERE = Path(__file__).resolve().parent


def account_id(number: int) -> str:
    return f"A{number:07d}"


def meter_id(number: int) -> str:
    return f"M{number:07d}"


def number_of(identifier: str) -> int:
    return int(identifier[1:])


def kwh_of(number: int) -> Decimal:
    """The simulated month's kWh of account ``number``: 50.000 to 649.xxx kWh."""
    return Decimal(50 + (number * 37) % 600) + Decimal(number % 1000) * MILLI


def tariff_of(number: int, tou_every: int) -> str:
    return TOU_TARIFF if tou_every and number % tou_every == 0 else FLAT_TARIFF


class SimCrm(Node, crm_pb2_grpc.CustomersServicer):
    """Accounts 1..N; every ``closed_every``-th is closed; ids above N are unknown."""

    kind = "sim-crm"

    def __init__(self, *, accounts: int, closed_every: int, tou_every: int) -> None:
        self.accounts, self.closed_every, self.tou_every = accounts, closed_every, tou_every

    async def GetAccount(self, request: crm_pb2.GetAccountRequest, context: Any) -> crm_pb2.Account:
        try:
            number = number_of(request.account_id)
        except ValueError:
            raise NotFound(f"no account {request.account_id!r}") from None
        if not 1 <= number <= self.accounts:
            raise NotFound(f"no account {request.account_id!r}")
        return self._account(number)

    async def ListAccounts(
        self, request: crm_pb2.ListAccountsRequest, context: Any
    ) -> crm_pb2.ListAccountsResponse:
        """Every account in the statuses asked for, by id, in pages (the offset is the token)."""
        matching = [
            n
            for n in range(1, self.accounts + 1)
            if not request.statuses or self._account(n).status in request.statuses
        ]
        offset = int(request.page.page_token or 0)
        size = request.page.page_size or 50
        page = matching[offset : offset + size]
        more = offset + size < len(matching)
        return crm_pb2.ListAccountsResponse(
            accounts=[self._account(n) for n in page],
            page=common_pb2.PageResponse(
                next_page_token=str(offset + size) if more else "", total_size=len(matching)
            ),
        )

    def _account(self, number: int) -> crm_pb2.Account:
        closed = self.closed_every and number % self.closed_every == 0
        return crm_pb2.Account(
            account_id=account_id(number),
            customer_id=f"C{number:07d}",
            status=crm_pb2.ACCOUNT_STATUS_CLOSED if closed else crm_pb2.ACCOUNT_STATUS_ACTIVE,
            tariff_id=tariff_of(number, self.tou_every),
            meters=[common_pb2.MeterRef(meter_id=meter_id(number))],
        )


class SimMetering(Node, metering_pb2_grpc.MeteringServicer):
    """Flat-load usage of every meter; ``delay`` seconds per call to slow a run down."""

    kind = "sim-metering"

    def __init__(self, *, delay: float) -> None:
        self.delay = delay

    async def SummarizeUsage(
        self, request: metering_pb2.SummarizeUsageRequest, context: Any
    ) -> metering_pb2.SummarizeUsageResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        zone = ZoneInfo(request.time_zone or "Asia/Shanghai")
        month = (
            request.period.start.ToDatetime().replace(tzinfo=ZoneInfo("UTC")).astimezone(zone).month
        )
        minutes = _minutes_by_label(request.windows, month)
        reply = metering_pb2.SummarizeUsageResponse()
        for meter in request.meters:
            total = kwh_of(number_of(meter.meter_id))
            summary = reply.summaries.add(
                meter=meter, period=request.period, kwh=float(total), complete=True
            )
            for label, kwh in split(total, minutes):
                summary.window_usage.add(label=label, kwh=float(kwh))
        return reply


def _minutes_by_label(
    windows: Sequence[metering_pb2.LocalTimeWindow], month: int
) -> list[tuple[str, int]]:
    found: dict[str, int] = {}
    for w in windows:
        if w.months and month not in w.months:
            continue
        length = (w.end_minute - w.start_minute) % 1440 or 1440
        found[w.label] = found.get(w.label, 0) + length
    return list(found.items())


def split(total: Decimal, minutes: Sequence[tuple[str, int]]) -> list[tuple[str, Decimal]]:
    """``total`` kWh by window label in proportion to minutes, to 0.001 kWh, the last
    label taking the remainder."""
    parts: list[tuple[str, Decimal]] = []
    left = total
    for i, (label, count) in enumerate(minutes):
        if i == len(minutes) - 1:
            parts.append((label, left))
        else:
            share = (total * count / 1440).quantize(MILLI, ROUND_HALF_UP)
            parts.append((label, share))
            left -= share
    return parts


def start_sim(
    group: ProcessGroup, kind: str, *, bus: str, node_id: str, **options: object
) -> ProcessHandle:
    """Start a simulator node under ``group`` (stopped with the test) and wait until it
    registered."""
    state_file = group.directory / f"{node_id}.json"
    args = [NODE_COMMAND[0], str(HERE / "sim_nodes.py"), kind, "--bus", bus, "--id", node_id]
    args += ["--state-file", str(state_file)]
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    handle = ProcessHandle(
        name=node_id, args=args, directory=group.directory, state_file=state_file
    )
    group.handles.append(handle)
    handle.wait_ready()
    return handle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=["crm", "metering"])
    parser.add_argument("--bus", required=True)
    parser.add_argument("--id", required=True)
    parser.add_argument("--state-file", type=Path, required=True)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--closed-every", type=int, default=0)
    parser.add_argument("--tou-every", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    node: Node
    if args.kind == "crm":
        node = SimCrm(
            accounts=args.accounts, closed_every=args.closed_every, tou_every=args.tou_every
        )
    else:
        node = SimMetering(delay=args.delay)
    config = NodeConfig(
        id=args.id, bus=parse_host_port(args.bus, field="bus"), state_file=args.state_file
    )
    run_event_loop(run_node(node, config))


if __name__ == "__main__":
    main()
