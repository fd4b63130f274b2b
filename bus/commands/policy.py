"""``powerbus policy``: show and change per-service load-balancing and fault-tolerance policy.

Changes are stored in the registry database and taken up by every bus instance and every
proxyless client within a few seconds, without a restart.
"""

from __future__ import annotations

import difflib
import getpass
import json
import os
import socket
from typing import Annotated

import grpc
import typer
from rich.console import Console
from rich.table import Table

from powerbus.bus.commands.common import (
    BusOption,
    JsonOption,
    TimeoutOption,
    bus_channel,
    exit_on_error,
)
from powerbus.bus.kernel.errors import InvalidArgument
from powerbus.bus.policy import ServicePolicy, policy_keys
from powerbus.policy.v1 import policy_pb2, policy_pb2_grpc
from powerbus.registry.v1 import registry_pb2, registry_pb2_grpc

__all__ = ["policy_app"]


def _author() -> str:
    """Who runs this command, for the policy's record: ``user@host``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container, say)
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def _check_known(channel: grpc.Channel, service: str, timeout: float) -> None:
    """Refuse a service no node (live or down) has registered, naming the likely one."""
    reply = registry_pb2_grpc.RegistryStub(channel).ListNodes(
        registry_pb2.ListNodesRequest(include_down=True), timeout=timeout
    )
    known = sorted({s for n in reply.nodes for s in n.services})
    if service in known:
        return
    close = difflib.get_close_matches(service, known, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise InvalidArgument(
        "service",
        f"no node has registered {service}; {hint}nothing was stored"
        " (pass --force to set it for nodes still to come)",
    )


policy_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Show and change per-service load balancing and fault tolerance (no restart).",
)

ServiceArgument = Annotated[
    str, typer.Argument(help="Full service name, e.g. powerbus.echo.v1.Echo; * for every one.")
]


@policy_app.command("show")
def show_command(
    service: ServiceArgument,
    bus: BusOption = "127.0.0.1:50051",
    as_json: JsonOption = False,
    timeout: TimeoutOption = 5.0,
) -> None:
    """Print a service's effective policy; stored overrides are marked.

    Example:

        powerbus policy show powerbus.echo.v1.Echo --bus 127.0.0.1:50051
    """
    with exit_on_error(bus), bus_channel(bus) as channel:
        policy = policy_pb2_grpc.PoliciesStub(channel).GetPolicy(
            policy_pb2.GetPolicyRequest(service=service), timeout=timeout
        )
    _print(policy, as_json=as_json)


@policy_app.command("set")
def set_command(
    service: ServiceArgument,
    settings: Annotated[
        list[str] | None,
        typer.Argument(help="KEY=VALUE pairs, e.g. picker=peak_ewma retry.max_attempts=2."),
    ] = None,
    unset: Annotated[
        list[str] | None,
        typer.Option("--unset", help="Remove this override (repeatable), back to the default."),
    ] = None,
    reset: Annotated[
        bool, typer.Option("--reset", help="Remove every override of the service first.")
    ] = False,
    by: Annotated[
        str,
        typer.Option("--by", help="Who is changing it, for the record. [default: USER@HOST]"),
    ] = "",
    force: Annotated[
        bool,
        typer.Option("--force", help="Set it even though no node has registered the service."),
    ] = False,
    bus: BusOption = "127.0.0.1:50051",
    as_json: JsonOption = False,
    timeout: TimeoutOption = 5.0,
) -> None:
    """Change a service's policy on every bus instance and proxyless client.

    A service no node has registered is refused (a typo would be stored silently and
    never apply) unless --force, for a service whose nodes are still to come.

    Keys are listed by `powerbus policy keys`; durations read like 250ms, 10s, 5m.

    Example:

    \b
        powerbus policy set powerbus.echo.v1.Echo picker=peak_ewma retry.max_attempts=2 \\
            outlier.base_ejection=10s
    """
    with exit_on_error(bus):
        pairs = _pairs(settings or [])
        request = policy_pb2.SetPolicyRequest(
            service=service, set=pairs, unset=unset or [], reset=reset, updated_by=by or _author()
        )
        with bus_channel(bus) as channel:
            if not force and service != "*":
                _check_known(channel, service, timeout)
            policy = policy_pb2_grpc.PoliciesStub(channel).SetPolicy(request, timeout=timeout)
    _print(policy, as_json=as_json)


@policy_app.command("list")
def list_command(
    bus: BusOption = "127.0.0.1:50051",
    as_json: JsonOption = False,
    timeout: TimeoutOption = 5.0,
) -> None:
    """List the services whose policy differs from the defaults, with their overrides.

    Example:

        powerbus policy list --json
    """
    with exit_on_error(bus), bus_channel(bus) as channel:
        reply = policy_pb2_grpc.PoliciesStub(channel).ListPolicies(
            policy_pb2.ListPoliciesRequest(), timeout=timeout
        )
    if as_json:
        rows = [{"service": p.service, "overrides": dict(p.overrides)} for p in reply.policies]
        typer.echo(json.dumps({"policies": rows}, indent=2, ensure_ascii=False))
        return
    table = Table(title=f"policies on {bus}", title_justify="left")
    table.add_column("service")
    table.add_column("overrides")
    table.add_column("by")
    for p in reply.policies:
        overrides = " ".join(f"{k}={v}" for k, v in sorted(p.overrides.items()))
        table.add_row(p.service, overrides or "(policy file only)", p.updated_by)
    Console().print(table if reply.policies else "every service runs on the defaults")


@policy_app.command("keys")
def keys_command(as_json: JsonOption = False) -> None:
    """List every policy key with its built-in default (needs no bus).

    Example:

        powerbus policy keys
    """
    defaults = ServicePolicy().settings()
    if as_json:
        typer.echo(json.dumps(defaults, indent=2))
        return
    table = Table(title="policy keys", title_justify="left")
    table.add_column("key")
    table.add_column("default")
    for key in policy_keys():
        table.add_row(key, defaults[key])
    Console().print(table)


def _pairs(items: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidArgument(item, "expected KEY=VALUE")
        pairs[key.strip()] = value.strip()
    return pairs


def _print(policy: policy_pb2.Policy, *, as_json: bool) -> None:
    if as_json:
        data = {
            "service": policy.service,
            "settings": dict(sorted(policy.settings.items())),
            "overrides": dict(sorted(policy.overrides.items())),
            "revision": policy.revision,
            "updated_by": policy.updated_by,
        }
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    table = Table(title=f"policy of {policy.service}", title_justify="left")
    table.add_column("key")
    table.add_column("value")
    table.add_column("")
    for key, value in sorted(policy.settings.items()):
        mark = "override" if key in policy.overrides else ""
        table.add_row(key, f"[bold]{value}[/]" if mark else value, mark)
    Console().print(table)
