"""``powerbus reconcile``: reconcile one bank's settlement date through the payment node."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer

from powerbus.adapters.bank import render_table, report_to_json
from powerbus.bus.commands.common import BusOption, JsonOption, bus_channel, exit_on_error
from powerbus.bus.kernel.errors import InvalidArgument
from powerbus.nodes.payment.convert import date_proto, report_from_proto
from powerbus.payment.v1 import payment_pb2, payment_pb2_grpc

__all__ = ["reconcile_command"]


def reconcile_command(
    bank: Annotated[str, typer.Option("--bank", help="The bank's code, e.g. 0102.")],
    date: Annotated[str, typer.Option("--date", help="Settlement date, YYYY-MM-DD.")],
    bus: BusOption = "127.0.0.1:50051",
    differences: Annotated[
        bool, typer.Option("--differences", help="Show only items that are not MATCHED.")
    ] = False,
    stored: Annotated[
        bool, typer.Option("--stored", help="Show the stored report; do not reconcile again.")
    ] = False,
    as_json: JsonOption = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Deadline of the call, seconds.")
    ] = 120.0,
) -> None:
    """Match the ledger against a bank's statement (对账) and print the report.

    Exits 0 when balanced (every item MATCHED or IN_TRANSIT), 2 when there are
    differences, 1 on error.

    Example:

        powerbus reconcile --bus 127.0.0.1:50051 --bank 0102 --date 2026-12-04 --json
    """
    with exit_on_error():
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
    raise typer.Exit(0 if report.balanced else 2)
