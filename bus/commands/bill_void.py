"""``powerbus bill void``: bill correction by cancel-and-rebill (作废重开), the original kept
and linked from its replacement."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from powerbus.billing.v1 import billing_pb2, billing_pb2_grpc
from powerbus.bus.commands.bill import _follow, _run_json, yuan
from powerbus.bus.commands.common import (
    BusOption,
    JsonOption,
    TimeoutOption,
    bus_channel,
    exit_on_error,
)
from powerbus.bus.kernel.errors import InvalidArgument

__all__ = ["void_command"]


def void_command(
    bill_id: Annotated[str, typer.Argument(metavar="ID", help="The bill to cancel.")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the record.")],
    rebill: Annotated[
        bool,
        typer.Option(
            "--rebill", help="Then bill the account's month again (a run named rebill-ID)."
        ),
    ] = False,
    bus: BusOption = "127.0.0.1:50051",
    as_json: JsonOption = False,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Cancel a bill for correction (作废): it is kept, voided with the reason, and what was
    paid on it goes back to the payments as credit. With --rebill, a billing run for the
    account and month then issues the replacement, linked to the voided bill.

    Example:

        powerbus bill void 3f2a9c0d41b84e5f9a1b --reason "meter reading corrected" --rebill
    """
    with exit_on_error(bus):
        if not reason.strip():
            raise InvalidArgument("--reason", "must say why the bill is voided")
        with bus_channel(bus) as channel:
            stub = billing_pb2_grpc.BillingStub(channel)
            voided = stub.VoidBill(
                billing_pb2.VoidBillRequest(bill_id=bill_id, reason=reason), timeout=timeout
            )
            out: dict[str, Any] = {"voided": voided.bill_id, "reason": voided.void_reason}
            if rebill:
                request = billing_pb2.StartBillingRunRequest(
                    run_id=f"rebill-{voided.bill_id}",
                    period=voided.period,
                    account_ids=[voided.account.account_id],
                )
                run = stub.StartBillingRun(request, timeout=timeout)
                run = _follow(stub, run, 0.2, timeout, quiet=True)
                out["run"] = _run_json(run)
                replacement = _replacement(stub, voided, timeout)
                out["replacement"] = replacement.bill_id if replacement else None
                out["replacement_total_fen"] = replacement.total.fen if replacement else None
        if as_json:
            typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
            return
        typer.echo(f"bill {voided.bill_id} voided: {voided.void_reason}")
        if rebill:
            if out["replacement"] is None:
                typer.echo(f"not rebilled: run {out['run']['run_id']} {out['run']['state']}")
                for error in out["run"]["errors"]:
                    typer.echo(f"  {error['account_id']}: {error['reason']}")
                raise typer.Exit(1)
            typer.echo(
                f"replaced by bill {out['replacement']}: "
                f"{yuan(int(out['replacement_total_fen']))} yuan"
            )


def _replacement(
    stub: billing_pb2_grpc.BillingStub, voided: billing_pb2.Bill, timeout: float
) -> billing_pb2.Bill | None:
    """The bill that replaces ``voided`` (newest first, so within the first page)."""
    reply = stub.ListBills(
        billing_pb2.ListBillsRequest(account=voided.account, period=voided.period),
        timeout=timeout,
    )
    return next((b for b in reply.bills if b.replaces_bill_id == voided.bill_id), None)
