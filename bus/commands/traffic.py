"""``powerbus traffic``: what flows across the bus, live in the terminal, like ``top``."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from powerbus.bus.commands.common import JsonOption, TimeoutOption, exit_on_error
from powerbus.monitoring.http_client import fetch_json

__all__ = ["HttpOption", "traffic_command"]

HttpOption = Annotated[
    str,
    typer.Option(
        "--http",
        envvar="POWERBUS_HTTP",
        help="The bus's HTTP address (dashboard, /api), HOST:PORT.",
    ),
]
HEALTH_STYLE = {
    "up": "green",
    "ok": "green",
    "draining": "yellow",
    "degraded": "yellow",
    "unreachable": "bold red",
    "down": "bold red",
    "dark": "bold red",
    "left": "dim",
    "unregistered": "dim",
}


def traffic_command(
    http: HttpOption = "127.0.0.1:8080",
    service: Annotated[
        str,
        typer.Option("--service", help="Show one service split by method, node and caller."),
    ] = "",
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between refreshes.", min=0.2)
    ] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="Print one screen and exit.")] = False,
    count: Annotated[
        int,
        typer.Option("--count", help="Exit after this many refreshes (0: until Ctrl-C).", min=0),
    ] = 0,
    as_json: JsonOption = False,
    timeout: TimeoutOption = 5.0,
) -> None:
    """Watch the bus's traffic live: requests/s, error rate, p50/p99 and health of every
    service and node, and active alerts. Ctrl-C quits.

    Example:

    \b
        powerbus traffic --http 127.0.0.1:8080
        powerbus traffic --service powerbus.echo.v1.Echo --once
    """
    with exit_on_error():
        if as_json:
            data = _fetch(http, service, timeout)
            typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
            return
        console = Console()
        if once:
            console.print(_screen(http, _fetch(http, service, timeout), service))
            return
        shown = 0
        with Live(console=console, auto_refresh=False, screen=False) as live:
            try:
                while True:
                    live.update(
                        _screen(http, _fetch(http, service, timeout), service), refresh=True
                    )
                    shown += 1
                    if count and shown >= count:
                        break
                    time.sleep(interval)
            except KeyboardInterrupt:
                pass


def _fetch(http: str, service: str, timeout: float) -> dict[str, Any]:
    if service:
        data: dict[str, Any] = fetch_json(http, "/api/breakdown", timeout=timeout, service=service)
        return data
    overview: dict[str, Any] = fetch_json(http, "/api/overview", timeout=timeout)
    return overview


def _screen(http: str, data: dict[str, Any], service: str) -> Group:
    if service:
        return _service_screen(http, data, service)
    totals = data["totals"]
    up = sum(1 for n in data["nodes"] if n["health"] == "up")
    started = datetime.fromtimestamp(data["started_at"]).strftime("%Y-%m-%d %H:%M:%S")
    head = Text.assemble(
        ("powerbus traffic ", "bold"),
        (f"{http}  ", "cyan"),
        f"{_qps(totals['qps'])} req/s  ",
        (f"errors {_pct(totals['error_share'])}  ", _err_style(totals["error_share"])),
        f"p50 {_ms(totals['p50_ms'])}  p99 {_ms(totals['p99_ms'])}  ",
        f"nodes up {up}/{len(data['nodes'])}  ",
        (f"since {started}  (last {data['window_s']:.0f}s)", "dim"),
    )
    services = _table(
        "services 服务",
        ["service", "state", "healthy", "req/s", "errors", "p50", "p99", "in flight", "requests"],
    )
    for s in data["services"]:
        services.add_row(
            s["service"],
            Text(s["state"], HEALTH_STYLE.get(s["state"], "")),
            f"{s['healthy']}/{s['nodes']}" + (" SPOF" if s["single_point_of_failure"] else ""),
            _qps(s["qps"]),
            Text(_pct(s["error_share"]), _err_style(s["error_share"])),
            _ms(s["p50_ms"]),
            _ms(s["p99_ms"]),
            str(s["in_flight"]),
            f"{s['requests_total']:,}",
        )
    nodes = _table(
        "nodes 节点",
        ["node", "kind", "health", "req/s", "errors", "p50", "p99", "in flight", "requests"],
    )
    for n in data["nodes"]:
        nodes.add_row(
            n["node_id"],
            n["kind"],
            Text(n["health"], HEALTH_STYLE.get(n["health"], "")),
            _qps(n["qps"]),
            Text(_pct(n["error_share"]), _err_style(n["error_share"])),
            _ms(n["p50_ms"]),
            _ms(n["p99_ms"]),
            str(n["in_flight"]),
            f"{n['requests_total']:,}",
        )
    parts: list[Any] = [head, services, nodes]
    if data["alerts"]:
        alerts = _table("active alerts 告警", ["severity", "rule", "subject", "since", "message"])
        for a in data["alerts"]:
            alerts.add_row(
                Text(a["severity"], "bold red" if a["severity"] == "critical" else "yellow"),
                a["rule"],
                a["subject"],
                a["raised_at"],
                a["message"],
            )
        parts.append(alerts)
    else:
        parts.append(Text("no active alerts 无活动告警", "green"))
    return Group(*parts)


def _service_screen(http: str, data: dict[str, Any], service: str) -> Group:
    parts: list[Any] = [
        Text.assemble(("powerbus traffic ", "bold"), (f"{http}  ", "cyan"), service)
    ]
    for key, title in (
        ("methods", "method"),
        ("nodes", "node"),
        ("callers", "caller"),
        ("codes", "code"),
    ):
        table = _table(
            f"by {title}", [title, "req/s", "errors", "p50", "p99", "requests", "bytes in/out"]
        )
        for row in data[key]:
            table.add_row(
                row["name"],
                _qps(row["qps"]),
                Text(_pct(row["error_share"]), _err_style(row["error_share"])),
                _ms(row["p50_ms"]),
                _ms(row["p99_ms"]),
                f"{row['requests_total']:,}",
                f"{row['bytes_in']:,} / {row['bytes_out']:,}",
            )
        parts.append(table if data[key] else Text(f"by {title}: no traffic yet", "dim"))
    return Group(*parts)


def _table(title: str, columns: list[str]) -> Table:
    table = Table(title=title, title_justify="left", pad_edge=False)
    for i, column in enumerate(columns):
        table.add_column(
            column, justify="left" if i == 0 or column in ("state", "health") else "right"
        )
    return table


def _qps(v: float) -> str:
    return f"{v:,.1f}"


def _pct(v: float) -> str:
    return f"{v * 100:.2f}%"


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}ms" if v >= 1 else f"{v * 1000:.0f}µs"


def _err_style(v: float) -> str:
    return "bold red" if v > 0.05 else "yellow" if v > 0.01 else ""
