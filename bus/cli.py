"""``powerbus``: one command line for the bus, its nodes, simulators and operators' tools.

Every subcommand has ``--help`` with an example. Tables have a ``--json`` twin for scripts.
"""

from __future__ import annotations

from importlib.metadata import version as package_version
from typing import Annotated

import typer

from powerbus.adapters.corba.idl.cli import app as idl_app
from powerbus.bus.commands.access import acl_app, audit_command, tokens_app
from powerbus.bus.commands.admin import admin_app
from powerbus.bus.commands.alerts import alerts_app
from powerbus.bus.commands.bill import bill_app
from powerbus.bus.commands.bill_void import void_command
from powerbus.bus.commands.call_method import call_command
from powerbus.bus.commands.certs import certs_app
from powerbus.bus.commands.config_check import config_app
from powerbus.bus.commands.demo import demo_command
from powerbus.bus.commands.events import events_app
from powerbus.bus.commands.list_nodes import nodes_command
from powerbus.bus.commands.meters import meters_app
from powerbus.bus.commands.policy import policy_app
from powerbus.bus.commands.reconcile import reconcile_app
from powerbus.bus.commands.serve_bus import bus_command
from powerbus.bus.commands.sim import sim_app
from powerbus.bus.commands.topology import topology_command
from powerbus.bus.commands.traffic import traffic_command
from powerbus.bus.commands.users import users_app
from powerbus.nodes.sdk.cli import KIND_CONTEXT, node_command

__all__ = ["app", "main"]

app = typer.Typer(
    name="powerbus",
    help="powerbus — the integration bus of a power utility's marketing systems.\n\n"
    "Start a bus, start nodes on it, call any registered service through it, watch it.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("bus")(bus_command)
app.command("node", context_settings=KIND_CONTEXT, add_help_option=False)(node_command)
app.command("nodes")(nodes_command)
app.command("call")(call_command)
app.command("demo")(demo_command)
app.command("traffic")(traffic_command)
app.command("topology")(topology_command)
app.add_typer(events_app, name="events", help="Live events, and replay from the bus's store.")
app.add_typer(
    reconcile_app,
    name="reconcile",
    help="Reconcile a bank's settlement date (对账); resolve its differences.",
)
app.add_typer(idl_app, name="idl", help="Generate or check the CORBA IDL derived from the protos.")
app.add_typer(policy_app, name="policy", help="Per-service load balancing and fault tolerance.")
app.add_typer(config_app, name="config", help="Check configuration files without starting.")
app.add_typer(admin_app, name="admin", help="Operator actions on nodes (drain, weight, ...).")
app.add_typer(alerts_app, name="alerts", help="List, acknowledge and silence alerts.")
app.add_typer(sim_app, name="sim", help="Simulators of the real systems adapters talk to.")
bill_app.command("void")(void_command)
app.add_typer(bill_app, name="bill", help="Billing: quotes, billing runs, bills.")
app.add_typer(meters_app, name="meters", help="Meters and their readings (metering node).")
app.add_typer(certs_app, name="certs", help="A development CA and bus/node TLS certificates.")
app.add_typer(tokens_app, name="tokens", help="Bearer tokens that prove a node's identity.")
app.add_typer(acl_app, name="acl", help="Access rules: who may call, serve, read, change.")
app.command("audit")(audit_command)
app.add_typer(users_app, name="users", help="Dashboard and /api users, roles and API tokens.")


def _version(show: bool) -> None:
    if show:
        typer.echo(f"powerbus {package_version('powerbus')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """powerbus — the integration bus of a power utility's marketing systems.

    Start a bus, start nodes on it, call any registered service through it, watch it.
    """


def main() -> None:
    """Console-script entry point."""
    app()
