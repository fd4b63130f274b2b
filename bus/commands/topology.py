"""``powerbus topology``: who calls what, and what breaks if a node goes down."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.text import Text
from rich.tree import Tree

from powerbus.bus.commands.common import JsonOption, TimeoutOption, exit_on_error
from powerbus.bus.commands.traffic import HEALTH_STYLE, HttpOption
from powerbus.monitoring.http_client import fetch_json, fetch_text

__all__ = ["topology_command"]


def topology_command(
    http: HttpOption = "127.0.0.1:8080",
    impact: Annotated[
        str,
        typer.Option(
            "--impact", metavar="NODE", help="Show what breaks if NODE goes down instead."
        ),
    ] = "",
    dot: Annotated[bool, typer.Option("--dot", help="Print the graph for Graphviz.")] = False,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 5.0,
) -> None:
    """Show the node-relationship graph: services, their nodes and health, who calls them
    (declared and observed), event publishers and subscribers with their rates and lag,
    single points of failure and dependency cycles.

    Example:

    \b
        powerbus topology --http 127.0.0.1:8080
        powerbus topology --impact billing-1
        powerbus topology --dot | dot -Tsvg > bus.svg
    """
    with exit_on_error():
        if impact:
            data = fetch_json(http, "/api/impact", timeout=timeout, node=impact)
            if as_json:
                typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
            else:
                Console().print(_impact(data))
            return
        if dot:
            typer.echo(fetch_text(http, "/api/topology?format=dot", timeout=timeout), nl=False)
            return
        data = fetch_json(http, "/api/topology", timeout=timeout)
        if as_json:
            typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
            return
        Console().print(_tree(http, data))


def _tree(http: str, data: dict[str, Any]) -> Group:
    nodes = {n["node_id"]: n for n in data["nodes"]}
    root = Tree(Text.assemble(("bus ", "bold"), (http, "cyan")))
    edges: dict[str, list[dict[str, Any]]] = {}
    for e in data["observed_edges"]:
        edges.setdefault(e["service"], []).append(e)
    for s in data["services"]:
        label = Text.assemble(
            (s["service"], "bold"),
            "  ",
            (s["state"], HEALTH_STYLE.get(s["state"], "")),
            f"  {len(s['healthy'])}/{len(s['nodes'])} healthy",
            ("  SPOF" if s["single_point_of_failure"] else "", "yellow"),
        )
        branch = root.add(label)
        for node_id in s["nodes"] + s["left"]:
            node = nodes.get(node_id, {})
            health = node.get("health", "?")
            qps = sum(e["qps"] for e in edges.get(s["service"], []) if e["node"] == node_id)
            branch.add(
                Text.assemble(
                    node_id,
                    "  ",
                    (health, HEALTH_STYLE.get(health, "")),
                    f"  {node.get('priority', '')}  {qps:.1f} req/s",
                )
            )
        callers = s["callers"]
        if callers:
            branch.add(Text("called by " + ", ".join(callers), "dim"))
    parts: list[Any] = [root]
    clients = [n for n in data["nodes"] if not n["services"]]
    for n in clients:
        parts.append(
            Text(f"client {n['node_id']} ({n['health']}) calls " + ", ".join(n["dependencies"]))
        )
    spofs = data["single_points_of_failure"]
    parts.append(
        Text(
            "single points of failure: " + (", ".join(spofs) if spofs else "none"),
            "yellow" if spofs else "green",
        )
    )
    for e in data.get("event_edges", []):
        topics = ", ".join(t or "(every topic)" for t in e["topics"])
        if e["role"] == "publishes":
            line = f"events ← {e['node']} publishes {topics}  {e['rate_per_s']:.1f} ev/s"
        else:
            line = (
                f"events → {e['node']} subscribes {topics}  {e['rate_per_s']:.1f} ev/s"
                f"  lag {e['lag']}"
            )
        parts.append(Text(line, "blue"))
    cycles = data["cycles"]
    parts.append(
        Text(
            "dependency cycles: "
            + ("; ".join(" → ".join(c) for c in cycles) if cycles else "none"),
            "magenta" if cycles else "green",
        )
    )
    return Group(*parts)


def _impact(data: dict[str, Any]) -> Group:
    parts: list[Any] = [Text.assemble(("if ", ""), (data["node"], "bold"), " goes down:")]
    if not data["services"] and not data["callers_hit"]:
        parts.append(Text("  nothing breaks: its services have other healthy nodes", "green"))
    for s in data["services"]:
        style = "bold red" if s["effect"] == "dark" else "yellow"
        parts.append(
            Text(
                f"  {s['effect']:<9}{s['service']}  healthy {s['healthy_before']} → "
                f"{s['healthy_after']}, capacity -{s['capacity_lost'] * 100:.0f}%",
                style,
            )
        )
    for c in data["callers_hit"]:
        style = "red" if c["effect"] == "outage" else "yellow"
        parts.append(
            Text(
                f"  hit      {c['caller']} ({c['effect']} via {c['service']}, depth {c['depth']})",
                style,
            )
        )
    for n in data["impaired_nodes"]:
        parts.append(Text(f"  impaired {n['node']} ({n['because']})", "red"))
    spofs = data["single_points_of_failure"]
    parts.append(Text("single points of failure: " + (", ".join(spofs) or "none"), "dim"))
    if data["cycles"]:
        parts.append(
            Text(
                "dependency cycles: " + "; ".join(" → ".join(c) for c in data["cycles"]), "magenta"
            )
        )
    return Group(*parts)
