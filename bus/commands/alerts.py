"""``powerbus alerts``: list, acknowledge and silence alerts, through the bus's HTTP port."""

from __future__ import annotations

import getpass
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from powerbus.bus.commands.common import JsonOption, TimeoutOption, exit_on_error
from powerbus.bus.commands.traffic import HttpOption
from powerbus.monitoring.http_client import fetch_json, post_json

__all__ = ["alerts_app"]

alerts_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    help="List, acknowledge and silence alerts (silenced ones are not sent to webhooks).",
)

RuleArgument = Annotated[str, typer.Argument(metavar="RULE", help="The rule, e.g. node-down.")]
ByOption = Annotated[str, typer.Option("--by", help="Who, for the record. [default: $USER]")]
CommentOption = Annotated[str, typer.Option("--comment", help="Why, for the record.")]


def _who(by: str) -> str:
    return by or getpass.getuser()


@alerts_app.command("list")
def list_command(
    http: HttpOption = "127.0.0.1:8080",
    as_json: JsonOption = False,
    timeout: TimeoutOption = 5.0,
) -> None:
    """Active alerts (acknowledged or silenced ones marked) and the silences in force.

    Example:

        powerbus alerts list --http 127.0.0.1:8080
    """
    with exit_on_error():
        data = fetch_json(http, "/api/alerts", timeout=timeout)
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    table = Table(title="active alerts", title_justify="left")
    for column in ("rule", "subject", "severity", "since", "state", "message"):
        table.add_column(column)
    for a in data["active"]:
        state = "silenced" if a["silenced"] else ""
        if a["acknowledged_by"]:
            state = f"ack {a['acknowledged_by']} {state}".strip()
        table.add_row(
            a["rule"], a["subject"], a["severity"], a["raised_at"][11:19], state, a["message"]
        )
    console = Console()
    console.print(table if data["active"] else "no active alerts")
    for s in data["silences"]:
        console.print(
            f"silence {s['id']}: rule {s['rule'] or '*'}, subject {s['subject'] or '*'},"
            f" by {s['by']}: {s['comment']}"
        )


@alerts_app.command("ack")
def ack_command(
    rule: RuleArgument,
    subject: Annotated[str, typer.Argument(metavar="SUBJECT", help="Its node or service.")],
    by: ByOption = "",
    comment: CommentOption = "",
    http: HttpOption = "127.0.0.1:8080",
    timeout: TimeoutOption = 5.0,
) -> None:
    """Acknowledge an active alert: it stays active, marked with who took it.

    Example:

        powerbus alerts ack node-down echo-2 --comment "restarting it"
    """
    with exit_on_error():
        post_json(
            http,
            "/api/alerts/ack",
            timeout=timeout,
            rule=rule,
            subject=subject,
            by=_who(by),
            comment=comment,
        )
    typer.echo(f"{rule} {subject}: acknowledged by {_who(by)}")


@alerts_app.command("silence")
def silence_command(
    rule: Annotated[str, typer.Option("--rule", help="Rule to silence; empty: any.")] = "",
    subject: Annotated[str, typer.Option("--subject", help="Node or service; empty: any.")] = "",
    duration: Annotated[str, typer.Option("--for", help="How long, e.g. 30m, 2h.")] = "1h",
    by: ByOption = "",
    comment: CommentOption = "",
    http: HttpOption = "127.0.0.1:8080",
    timeout: TimeoutOption = 5.0,
) -> None:
    """Stop sending matching alerts to webhooks for a while (they still show).

    Example:

        powerbus alerts silence --subject echo-2 --for 30m --comment "planned upgrade"
    """
    with exit_on_error():
        reply = post_json(
            http,
            "/api/alerts/silence",
            timeout=timeout,
            rule=rule,
            subject=subject,
            **{"for": duration},
            by=_who(by),
            comment=comment,
        )
    typer.echo(f"silence {reply['silence']} for {duration}")


@alerts_app.command("unsilence")
def unsilence_command(
    silence_id: Annotated[int, typer.Argument(metavar="ID", help="As alerts list shows it.")],
    http: HttpOption = "127.0.0.1:8080",
    timeout: TimeoutOption = 5.0,
) -> None:
    """End a silence now.

    Example:

        powerbus alerts unsilence 3
    """
    with exit_on_error():
        post_json(http, "/api/alerts/unsilence", timeout=timeout, id=str(silence_id))
    typer.echo(f"silence {silence_id} ended")
