"""``powerbus bill quote|run|show``: price a usage, run a billing month with a live
progress bar, show a bill. Tables fit 80 columns and give every line in Chinese and
English; ``--json`` prints the same for scripts."""

from __future__ import annotations

import json
import time
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from powerbus.billing.v1 import billing_pb2, billing_pb2_grpc
from powerbus.bus.commands.common import (
    BusOption,
    JsonOption,
    TimeoutOption,
    bus_channel,
    exit_on_error,
)
from powerbus.bus.kernel.errors import InvalidArgument
from powerbus.common.v1 import common_pb2

__all__ = ["bill_app"]

bill_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)

ZONE = ZoneInfo("Asia/Shanghai")
WIDTH = 80
_FINISHED = {
    billing_pb2.BILLING_RUN_STATE_SUCCEEDED,
    billing_pb2.BILLING_RUN_STATE_PARTIAL,
    billing_pb2.BILLING_RUN_STATE_FAILED,
}


def yuan(fen: int) -> str:
    """Fen as yuan: ``14949`` → ``"149.49"``."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def _console(*, stderr: bool = False) -> Console:
    # Without highlight=False rich colours every number and date it finds in a line
    # ("2026-10" as two numbers), which reads as noise in a summary.
    return Console(width=WIDTH, stderr=stderr, highlight=False)


def _day(text: str, option: str) -> common_pb2.Date:
    try:
        parsed = date.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(option, f"not a date YYYY-MM-DD: {text!r}") from None
    return common_pb2.Date(year=parsed.year, month=parsed.month, day=parsed.day)


def _month(text: str) -> common_pb2.Period:
    """``2026-10`` as the local (Asia/Shanghai) calendar month."""
    try:
        start = datetime.strptime(text, "%Y-%m").replace(tzinfo=ZONE)
    except ValueError:
        raise InvalidArgument("--period", f"not a month YYYY-MM: {text!r}") from None
    end = start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    period = common_pb2.Period()
    period.start.FromDatetime(start)
    period.end.FromDatetime(end)
    return period


def _tou(text: str) -> list[billing_pb2.TouUsage]:
    """``peak=300,valley=120.5`` → TOU usage rows."""
    rows = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        key = f"TOU_PERIOD_{name.strip().upper()}"
        names = list(billing_pb2.TouPeriod.keys())
        if key not in names:
            known = ", ".join(k.removeprefix("TOU_PERIOD_").lower() for k in names[1:])
            raise InvalidArgument("--tou", f"unknown period {name!r}; known: {known}")
        try:
            kwh = Decimal(value)
        except InvalidOperation:
            raise InvalidArgument("--tou", f"not a number of kWh: {value!r}") from None
        rows.append(billing_pb2.TouUsage(period=billing_pb2.TouPeriod.Value(key), kwh=float(kwh)))
    return rows


def _split(description: str) -> tuple[str, str]:
    """A wire description is ``"<中文> / <English>"``."""
    zh, _, en = description.partition(" / ")
    return zh, en


def _lines_table(lines: Any, total_fen: int) -> Table:
    table = Table(width=WIDTH, show_edge=False, pad_edge=False)
    table.add_column("金额 Amount", justify="right", no_wrap=True, width=13)
    table.add_column("说明 / Description", ratio=1, overflow="fold")
    for line in lines:
        zh, en = _split(line.description)
        # Text, not markup: a description may hold brackets.
        text = Text(zh + (" *" if line.informational else ""))
        text.append("\n" + en, style="dim")
        table.add_row(yuan(line.amount.fen), text)
    table.add_section()
    table.add_row(Text(yuan(total_fen), style="bold"), Text("合计 Total", style="bold"))
    if any(line.informational for line in lines):
        table.caption = (
            "* 已含在电价中，不计入合计 / included in the prices, not added to the total"
        )
    return table


def _lines_json(lines: Any) -> list[dict[str, Any]]:
    return [
        {
            "kind": billing_pb2.LineKind.Name(line.kind).removeprefix("LINE_KIND_").lower(),
            "zh": _split(line.description)[0],
            "en": _split(line.description)[1],
            "amount_fen": line.amount.fen,
            "informational": line.informational,
        }
        for line in lines
    ]


@bill_app.command("quote")
def quote_command(
    tariff: Annotated[
        str, typer.Option("--tariff", help="Tariff id, e.g. cn-beijing-residential.")
    ],
    kwh: Annotated[float, typer.Option("--kwh", help="kWh of the month.", min=0)] = 0.0,
    tou: Annotated[
        str,
        typer.Option("--tou", help="kWh per TOU period: peak=300,valley=120 (sharp_peak, flat)."),
    ] = "",
    when: Annotated[str, typer.Option("--date", help="A day of the billing month. [today]")] = "",
    year_to_date: Annotated[
        float, typer.Option("--ytd", help="kWh used earlier this year (annual tiers).", min=0)
    ] = 0.0,
    demand_basis: Annotated[
        str, typer.Option("--demand-basis", help="Two-part tariffs: max_demand or capacity.")
    ] = "",
    max_demand: Annotated[
        float, typer.Option("--max-demand", help="Maximum demand, kW.", min=0)
    ] = 0.0,
    contract_demand: Annotated[
        float, typer.Option("--contract-demand", help="Contract demand (核定需量), kW.", min=0)
    ] = 0.0,
    capacity: Annotated[
        float, typer.Option("--capacity", help="Transformer capacity, kVA.", min=0)
    ] = 0.0,
    kvarh: Annotated[float, typer.Option("--kvarh", help="Reactive energy, kvarh.", min=0)] = 0.0,
    pf_standard: Annotated[
        str, typer.Option("--pf-standard", help="Power-factor standard: 0.90, 0.85 or 0.80.")
    ] = "",
    bus: BusOption = "127.0.0.1:50051",
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Price a usage under a tariff with the billing node's Quote, line by line.

    Example:

        powerbus bill quote --tariff cn-beijing-residential --kwh 300 --date 2026-05-01
        powerbus bill quote --tariff cn-jiangsu-residential-tou --tou peak=300,valley=120
        powerbus bill quote --tariff cn-hubei-two-part-10kv --tou peak=6000,valley=4000 \
            --demand-basis max_demand --max-demand 400 --kvarh 4000 --pf-standard 0.90
    """
    with exit_on_error(bus):
        request = billing_pb2.QuoteRequest(
            tariff_id=tariff,
            kwh=kwh,
            tou_usage=_tou(tou),
            year_to_date_kwh=year_to_date,
            max_demand_kw=max_demand,
            contract_demand_kw=contract_demand,
            capacity_kva=capacity,
            reactive_kvarh=kvarh,
            power_factor_standard=common_pb2.Decimal(value=pf_standard),
        )
        if demand_basis:
            key = f"DEMAND_BASIS_{demand_basis.upper()}"
            if key not in list(billing_pb2.DemandBasis.keys()):
                raise InvalidArgument(
                    "--demand-basis", f"max_demand or capacity, not {demand_basis!r}"
                )
            request.demand_basis = billing_pb2.DemandBasis.Value(key)
        if when:
            request.billing_date.CopyFrom(_day(when, "--date"))
        with bus_channel(bus) as channel:
            reply = billing_pb2_grpc.BillingStub(channel).Quote(request, timeout=timeout)
        if as_json:
            out = {
                "tariff_id": reply.tariff_id,
                "effective_from": _iso(reply.effective_from),
                "kwh": reply.kwh,
                "total_fen": reply.total.fen,
                "lines": _lines_json(reply.lines),
            }
            typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
            return
        console = _console()
        console.print(f"{reply.tariff_id} (from {_iso(reply.effective_from)}), {reply.kwh:g} kWh")
        console.print(_lines_table(reply.lines, reply.total.fen))


def _iso(day: common_pb2.Date) -> str:
    return f"{day.year:04d}-{day.month:02d}-{day.day:02d}"


def _accounts(listed: str, accounts_file: Path | None) -> list[str]:
    ids = [a.strip() for a in listed.split(",") if a.strip()]
    if accounts_file is not None:
        try:
            text = accounts_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidArgument(
                "--accounts-file", f"cannot read {accounts_file}: {exc}"
            ) from None
        ids += [line.strip() for line in text.splitlines() if line.strip()]
    return ids


@bill_app.command("run")
def run_command(
    period: Annotated[str, typer.Option("--period", help="The month to bill, YYYY-MM.")],
    accounts: Annotated[
        str,
        typer.Option(
            "--accounts",
            help="Account ids, comma-separated; with neither this nor --accounts-file,"
            " every account CRM lists as billable.",
        ),
    ] = "",
    accounts_file: Annotated[
        Path | None, typer.Option("--accounts-file", help="Account ids, one per line.")
    ] = None,
    run_id: Annotated[str, typer.Option("--run-id", help="Idempotency key. [the period]")] = "",
    due: Annotated[str, typer.Option("--due-date", help="Due date of the bills, YYYY-MM-DD.")] = "",
    bus: BusOption = "127.0.0.1:50051",
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between polls.", min=0.1)
    ] = 0.5,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Start a billing run for a month and follow it: accounts done of total, bills per
    second, errors. Starting it again with the same --run-id follows the same run; it never
    bills an account twice. Exit status 0 when every account was billed or skipped.

    Example:

        powerbus bill run --period 2026-10 --bus 127.0.0.1:50051
    """
    with exit_on_error(bus):
        request = billing_pb2.StartBillingRunRequest(
            run_id=run_id or period,
            period=_month(period),
            account_ids=_accounts(accounts, accounts_file),
        )
        if due:
            request.due_date.CopyFrom(_day(due, "--due-date"))
        with bus_channel(bus) as channel:
            stub = billing_pb2_grpc.BillingStub(channel)
            run = stub.StartBillingRun(request, timeout=timeout)
            run = _follow(stub, run, interval, timeout, quiet=as_json)
        if as_json:
            typer.echo(json.dumps(_run_json(run), ensure_ascii=False, indent=2))
        else:
            _summary(run)
        if run.state != billing_pb2.BILLING_RUN_STATE_SUCCEEDED:
            raise typer.Exit(1)


def _follow(
    stub: billing_pb2_grpc.BillingStub,
    run: billing_pb2.BillingRun,
    interval: float,
    timeout: float,
    *,
    quiet: bool,
) -> billing_pb2.BillingRun:
    """Poll GetBillingRun until the run finishes, drawing the progress bar."""
    request = billing_pb2.GetBillingRunRequest(run_id=run.run_id)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>7.0f} bills/s  errors {task.fields[errors]}"),
        TimeElapsedColumn(),
    )
    started = time.monotonic()
    with Progress(*columns, console=_console(stderr=True), disable=quiet) as bar:
        task = bar.add_task(
            f"run {run.run_id}", total=run.accounts_total or None, rate=0.0, errors=0
        )
        while True:
            done = run.bills_issued + run.accounts_skipped + run.accounts_failed
            elapsed = max(time.monotonic() - started, 1e-9)
            bar.update(
                task,
                total=run.accounts_total or None,
                completed=done,
                rate=run.bills_issued / elapsed,
                errors=run.accounts_failed,
            )
            if run.state in _FINISHED:
                return run
            time.sleep(interval)
            run = stub.GetBillingRun(request, timeout=timeout)


def _run_json(run: billing_pb2.BillingRun) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "state": billing_pb2.BillingRunState.Name(run.state)
        .removeprefix("BILLING_RUN_STATE_")
        .lower(),
        "accounts_total": run.accounts_total,
        "bills_issued": run.bills_issued,
        "accounts_skipped": run.accounts_skipped,
        "accounts_failed": run.accounts_failed,
        "total_billed_fen": run.total_billed.fen,
        "total_kwh": run.total_kwh,
        "errors": [
            {"account_id": e.account_id, "reason": e.reason, "retriable": e.retriable}
            for e in run.errors
        ],
    }


def _summary(run: billing_pb2.BillingRun) -> None:
    console = _console()
    state = billing_pb2.BillingRunState.Name(run.state).removeprefix("BILLING_RUN_STATE_").lower()
    console.print(
        f"run {run.run_id}: {state}; {run.bills_issued} bills issued "
        f"({yuan(run.total_billed.fen)} yuan, {run.total_kwh:.3f} kWh), "
        f"{run.accounts_skipped} skipped, {run.accounts_failed} failed"
    )
    for error in run.errors[:10]:
        retry = " (retriable)" if error.retriable else ""
        console.print(f"  {error.account_id or '-'}: {error.reason}{retry}", markup=False)
    if len(run.errors) > 10:
        console.print(f"  … and {len(run.errors) - 10} more (--json lists them)")


@bill_app.command("show")
def show_command(
    bill_id: Annotated[str, typer.Argument(metavar="ID", help="The bill id.")],
    bus: BusOption = "127.0.0.1:50051",
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Show a bill: account, period, status, its lines and what has been paid on it.

    Example:

        powerbus bill show 3f2a9c0d41b84e5f9a1b --bus 127.0.0.1:50051
    """
    with exit_on_error(bus):
        with bus_channel(bus) as channel:
            bill = billing_pb2_grpc.BillingStub(channel).GetBill(
                billing_pb2.GetBillRequest(bill_id=bill_id), timeout=timeout
            )
        status = billing_pb2.BillStatus.Name(bill.status).removeprefix("BILL_STATUS_").lower()
        start = (
            bill.period.start.ToDatetime().replace(tzinfo=ZoneInfo("UTC")).astimezone(ZONE).date()
        )
        end = bill.period.end.ToDatetime().replace(tzinfo=ZoneInfo("UTC")).astimezone(ZONE).date()
        overdue = bill.amount_due.fen > 0 and datetime.now(ZONE).date() > date(
            bill.due_date.year, bill.due_date.month, bill.due_date.day
        )
        if as_json:
            out = {
                "bill_id": bill.bill_id,
                "account_id": bill.account.account_id,
                "tariff_id": bill.tariff_id,
                "period": [start.isoformat(), end.isoformat()],
                "status": status,
                "overdue": overdue,
                "total_fen": bill.total.fen,
                "paid_fen": bill.amount_paid.fen,
                "due_fen": bill.amount_due.fen,
                "due_date": _iso(bill.due_date),
                "kwh": bill.kwh,
                "run_id": bill.run_id,
                "lines": _lines_json(bill.lines),
                "allocations": [
                    {
                        "payment_id": a.payment_id,
                        "amount_fen": a.amount.fen,
                        "released": a.HasField("released_at"),
                    }
                    for a in bill.allocations
                ],
            }
            typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
            return
        console = _console()
        console.print(
            f"电费账单 Bill {bill.bill_id}  户号 Account {bill.account.account_id}", markup=False
        )
        console.print(
            f"{start} – {end}  {bill.tariff_id}  {bill.kwh:g} kWh  run {bill.run_id}", markup=False
        )
        label = f"{status}, overdue" if overdue else status
        console.print(
            f"状态 {label}  应收 due {yuan(bill.amount_due.fen)} of {yuan(bill.total.fen)} "
            f"by {_iso(bill.due_date)}",
            markup=False,
        )
        console.print(_lines_table(bill.lines, bill.total.fen))
        for a in bill.allocations:
            released = " (released)" if a.HasField("released_at") else ""
            console.print(
                f"  paid {yuan(a.amount.fen)} by payment {a.payment_id}{released}", markup=False
            )
