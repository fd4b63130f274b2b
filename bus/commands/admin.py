"""``powerbus admin``: what operators do to nodes by hand, through the bus's HTTP port.

Each action is stored in the registry, so every bus instance (and every proxyless client
watching it) follows within a sweep.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from powerbus.bus.commands.common import JsonOption, TimeoutOption, exit_on_error
from powerbus.bus.commands.traffic import HttpOption
from powerbus.monitoring.http_client import post_json

__all__ = ["admin_app"]

admin_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Operator actions on nodes: drain, disable, enable, weight, deregister, purge.",
)

NodeArgument = Annotated[str, typer.Argument(metavar="NODE_ID", help="The node, e.g. echo-1.")]


def _say(reply: dict[str, object], as_json: bool, text: str) -> None:
    typer.echo(json.dumps(reply, ensure_ascii=False) if as_json else text)


def _action(
    http: str, node_id: str, action: str, timeout: float, **query: str
) -> dict[str, object]:
    with exit_on_error():
        reply = post_json(http, f"/api/nodes/{node_id}/{action}", timeout=timeout, **query)
    return dict(reply)


@admin_app.command("drain")
def drain_command(
    node_id: NodeArgument,
    grace: Annotated[
        float, typer.Option("--grace", help="Wait this long for its calls to finish.", min=0)
    ] = 30.0,
    http: HttpOption = "127.0.0.1:8080",
    as_json: JsonOption = False,
) -> None:
    """Take a node out of rotation and wait (up to --grace) for the calls it has to finish;
    it stays registered. `powerbus admin enable` puts it back.

    Example:

        powerbus admin drain echo-1 --grace 30
    """
    reply = _action(http, node_id, "drain", grace + 10, grace=str(grace))
    busy = reply.get("in_flight", 0)
    done = "drained" if not busy else f"out of rotation; {busy} call(s) still in flight"
    _say(reply, as_json, f"{node_id}: {done}")


@admin_app.command("disable")
def disable_command(
    node_id: NodeArgument,
    http: HttpOption = "127.0.0.1:8080",
    as_json: JsonOption = False,
    timeout: TimeoutOption = 5.0,
) -> None:
    """Take a node out of rotation (health draining) without waiting; it stays registered.

    Example:

        powerbus admin disable echo-1
    """
    reply = _action(http, node_id, "disable", timeout)
    _say(reply, as_json, f"{node_id}: out of rotation" + ("" if reply["changed"] else " already"))


@admin_app.command("enable")
def enable_command(
    node_id: NodeArgument,
    http: HttpOption = "127.0.0.1:8080",
    as_json: JsonOption = False,
    timeout: TimeoutOption = 5.0,
) -> None:
    """Put a disabled or drained node back in rotation.

    Example:

        powerbus admin enable echo-1
    """
    reply = _action(http, node_id, "enable", timeout)
    _say(reply, as_json, f"{node_id}: in rotation" + ("" if reply["changed"] else " already"))


@admin_app.command("weight")
def weight_command(
    node_id: NodeArgument,
    weight: Annotated[int, typer.Argument(metavar="WEIGHT", help="Relative share, 1..10000.")],
    http: HttpOption = "127.0.0.1:8080",
    as_json: JsonOption = False,
    timeout: TimeoutOption = 5.0,
) -> None:
    """Change a node's weight (its share of its services' traffic) until it registers again.

    Example:

        powerbus admin weight echo-1 50
    """
    reply = _action(http, node_id, "weight", timeout, value=str(weight))
    _say(reply, as_json, f"{node_id}: weight {weight}")


@admin_app.command("deregister")
def deregister_command(
    node_id: NodeArgument,
    http: HttpOption = "127.0.0.1:8080",
    as_json: JsonOption = False,
    timeout: TimeoutOption = 5.0,
) -> None:
    """Mark a node down now, as if it had deregistered (for one that is gone but whose
    lease has not lapsed). A node still running registers again at its next heartbeat.

    Example:

        powerbus admin deregister echo-1
    """
    reply = _action(http, node_id, "deregister", timeout)
    _say(reply, as_json, f"{node_id}: deregistered")


@admin_app.command("purge")
def purge_command(
    http: HttpOption = "127.0.0.1:8080",
    as_json: JsonOption = False,
    timeout: TimeoutOption = 5.0,
) -> None:
    """Delete every node that is down or left from the registry now (they go after an
    hour by themselves).

    Example:

        powerbus admin purge --http 127.0.0.1:8080
    """
    with exit_on_error():
        reply = dict(post_json(http, "/api/nodes/purge", timeout=timeout))
    purged = list(reply.get("purged", []))
    _say(
        reply,
        as_json,
        f"purged {len(purged)} node(s)" + (f": {', '.join(purged)}" if purged else ""),
    )
