"""``powerbus nodes``: the nodes registered on a bus."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Annotated

import typer
from google.protobuf.json_format import MessageToDict
from rich.console import Console
from rich.table import Table

from powerbus.bus.commands.common import (
    BusOption,
    JsonOption,
    TimeoutOption,
    bus_channel,
    exit_on_error,
)
from powerbus.registry.v1 import registry_pb2, registry_pb2_grpc

__all__ = ["nodes_command"]

# The words the dashboard and /api use (monitoring's OperatorHealth), bar "unreachable",
# which only the bus's traffic shows.
_HEALTH_STYLE = {"up": "green", "draining": "yellow", "down": "red", "left": "dim"}


def nodes_command(
    bus: BusOption = "127.0.0.1:50051",
    service: Annotated[
        str, typer.Option("--service", help="Only nodes serving this service.")
    ] = "",
    all_nodes: Annotated[
        bool, typer.Option("--all", help="Include nodes that are down or left.")
    ] = False,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 5.0,
) -> None:
    """List the nodes registered on the bus: services, health, lease age, address.

    Health is up, draining, down (its lease lapsed) or left (it deregistered on a clean
    stop), the words of the dashboard and /api/nodes.

    Example:

        powerbus nodes --bus 127.0.0.1:50051 --all
    """
    with exit_on_error(bus), bus_channel(bus) as channel:
        reply = registry_pb2_grpc.RegistryStub(channel).ListNodes(
            registry_pb2.ListNodesRequest(service=service, include_down=all_nodes), timeout=timeout
        )
    now = datetime.now(timezone.utc)
    rows = [_row(n, now) for n in reply.nodes]
    if as_json:
        typer.echo(json.dumps({"nodes": rows}, indent=2, ensure_ascii=False))
        return
    table = Table(title=f"nodes on {bus}", title_justify="left")
    for column in ("node", "kind", "services", "health", "lease age", "address"):
        table.add_column(column)
    for r in rows:
        style = _HEALTH_STYLE.get(str(r["health"]), "")
        table.add_row(
            str(r["node_id"]),
            str(r["kind"]),
            "\n".join(r["services"]),  # type: ignore[arg-type]
            f"[{style}]{r['health']}[/]",
            f"{r['lease_age_s']:.1f}s",
            str(r["address"]),
        )
    Console().print(table if rows else "no nodes registered")


def _health(node: registry_pb2.Node) -> str:
    """``up``, ``draining``, ``down`` (lease lapsed) or ``left`` (deregistered)."""
    health = registry_pb2.NodeHealth.Name(node.health).removeprefix("NODE_HEALTH_").lower()
    left = node.HasField("down_since") and node.down_since.ToDatetime() < (
        node.lease_expires_at.ToDatetime()
    )
    return "left" if health == "down" and left else health


def _row(node: registry_pb2.Node, now: datetime) -> dict[str, object]:
    heartbeat = node.last_heartbeat_at.ToDatetime(tzinfo=timezone.utc)
    data = MessageToDict(node, preserving_proto_field_name=True)
    return {
        "node_id": node.node_id,
        "kind": node.kind,
        "services": list(node.services),
        "health": _health(node),
        "lease_age_s": round(max(0.0, (now - heartbeat).total_seconds()), 3),
        "address": node.address,
        "zone": node.zone,
        "weight": node.weight,
        "priority": registry_pb2.Priority.Name(node.priority).removeprefix("PRIORITY_").lower(),
        "load": data.get("load", {}),
    }
