"""``powerbus reconcile``: reconcile one bank's settlement date through the payment node,
and ``powerbus reconcile resolve``: an operator's resolution of one difference."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import textwrap
from enum import Enum
from typing import Annotated

import typer

from powerbus.adapters.bank import ResolutionAction, render_item, render_table, report_to_json
from powerbus.adapters.bank.reconcile.report import resolution_json
from powerbus.bus.commands.common import BusOption, JsonOption, bus_channel, exit_on_error
from powerbus.bus.kernel.errors import InvalidArgument
from powerbus.nodes.payment.convert import date_proto, item_from_proto, report_from_proto
from powerbus.payment.v1 import payment_pb2, payment_pb2_grpc

__all__ = ["reconcile_app"]

reconcile_app = typer.Typer(
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_WIDTH = 80

TimeoutSeconds = Annotated[
    float, typer.Option("--timeout", help="Deadline of the call, seconds.", min=0.001)
]


@reconcile_app.callback()
def reconcile_command(
    ctx: typer.Context,
    bank: Annotated[str, typer.Option("--bank", help="The bank's code, e.g. 0102.")] = "",
    date: Annotated[str, typer.Option("--date", help="Settlement date, YYYY-MM-DD.")] = "",
    bus: BusOption = "127.0.0.1:50051",
    differences: Annotated[
        bool, typer.Option("--differences", help="Show only items that are not MATCHED.")
    ] = False,
    stored: Annotated[
        bool, typer.Option("--stored", help="Show the stored report; do not reconcile again.")
    ] = False,
    as_json: JsonOption = False,
    timeout: TimeoutSeconds = 120.0,
) -> None:
    """Match the ledger against a bank's statement (对账) and print the report.

    Each difference is numbered; resolve it with `powerbus reconcile resolve`. A rerun
    shows the resolutions stored. Exits 0 when nothing is unresolved (every item MATCHED
    or IN_TRANSIT, or each difference resolved), 2 when differences remain unresolved,
    1 on error.

    Example:

        powerbus reconcile --bus 127.0.0.1:50051 --bank 0102 --date 2026-12-04 --json
    """
    if ctx.invoked_subcommand is not None:
        return
    with exit_on_error(bus):
        if not (bank and date):
            raise InvalidArgument("--bank/--date", "give both (or a subcommand: resolve)")
        try:
            day = dt.date.fromisoformat(date)
        except ValueError:
            raise InvalidArgument("--date", f"{date!r} is not YYYY-MM-DD") from None
        with bus_channel(bus) as channel:
            payments = payment_pb2_grpc.PaymentsStub(channel)
            if stored:
                proto = payments.GetReconciliationReport(
                    payment_pb2.GetReconciliationReportRequest(
                        bank_code=bank,
                        settlement_date=date_proto(day),
                        differences_only=differences,
                    ),
                    timeout=timeout,
                )
            else:
                proto = payments.Reconcile(
                    payment_pb2.ReconcileRequest(
                        bank_code=bank,
                        settlement_date=date_proto(day),
                        differences_only=differences,
                    ),
                    timeout=timeout,
                )
    report = report_from_proto(proto)
    if as_json:
        typer.echo(json.dumps(report_to_json(report), indent=2, ensure_ascii=False))
    else:
        typer.echo(render_table(report))
    raise typer.Exit(0 if proto.unresolved_count == 0 else 2)


class Action(str, Enum):
    """What the operator does (``ResolutionAction``), as typed on the command line."""

    post = "post"
    reverse = "reverse"
    write_off = "write-off"

    def wire(self) -> ResolutionAction:
        return ResolutionAction[self.name.upper()]


@reconcile_app.command("resolve")
def resolve_command(
    report: Annotated[
        str, typer.Option("--report", help="The report's id, <bank>-<YYYYMMDD>: 0102-20261204.")
    ],
    item: Annotated[
        int, typer.Option("--item", help="The item's number (# in the report).", min=1)
    ],
    action: Annotated[
        Action,
        typer.Option(
            "--action",
            help="post (ONLY_IN_BANK: post the bank's collection), reverse (ONLY_IN_SYSTEM "
            "or STATUS_DIFF: reverse the payment), write-off (any difference).",
        ),
    ],
    reason: Annotated[
        str, typer.Option("--reason", help="Why; stored and the journal's memo (≤ 200).")
    ],
    operator: Annotated[
        str,
        typer.Option("--operator", help="Who resolves it (≤ 64); default: the login name."),
    ] = "",
    bus: BusOption = "127.0.0.1:50051",
    as_json: JsonOption = False,
    timeout: TimeoutSeconds = 30.0,
) -> None:
    """Resolve one difference of a stored report as an audited ledger entry.

    The item is resolved once: a second attempt fails naming the first resolution.
    Exits 0 when resolved, 1 on error (the item unchanged).

    Example:

    \b
        powerbus reconcile resolve --report 0102-20261204 --item 3 \\
            --action write-off --reason "bank fee, confirmed by phone"
    """
    with exit_on_error(bus), bus_channel(bus) as channel:
        reply = payment_pb2_grpc.PaymentsStub(channel).ResolveDifference(
            payment_pb2.ResolveDifferenceRequest(
                report_id=report,
                item_number=item,
                action=payment_pb2.ResolutionAction.Value(
                    f"RESOLUTION_ACTION_{action.wire().value}"
                ),
                reason=reason,
                operator=operator or getpass.getuser(),
            ),
            timeout=timeout,
        )
    resolved = item_from_proto(reply.item)
    if as_json:
        data = {
            "report_id": report,
            "item": item,
            "resolution": resolution_json(resolved.resolution),
        }
        typer.echo(json.dumps(data, ensure_ascii=False))
        return
    typer.echo(f"report {report} item {item}: resolved")
    for line in render_item(resolved):
        typer.echo(textwrap.shorten(line, _WIDTH, placeholder="…") if len(line) > _WIDTH else line)
