"""History across a bus restart, and the operators' commands against a running bus."""

from __future__ import annotations

import json
import subprocess
import sys

import grpc

from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.monitoring.http_client import fetch_json, fetch_text
from powerbus.nodes.testing import eventually_sync

ECHO = "powerbus.echo.v1.Echo"
CALLS = 25


def send(bus: str, n: int, caller: str = "billing-1") -> None:
    with grpc.insecure_channel(bus) as channel:
        stub = echo_pb2_grpc.EchoStub(channel)
        for _ in range(n):
            stub.Echo(
                echo_pb2.EchoRequest(message="x"),
                timeout=5,
                metadata=(("x-powerbus-caller", caller),),
            )


def powerbus(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "powerbus.bus", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_rollups_survive_a_bus_restart(bus_factory, node_factory, tmp_path):
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    first = bus_factory(db=db)
    node = node_factory("echo", bus=first, node_id="echo-1")
    send(first.grpc, CALLS)
    node.stop()
    first.stop()  # SIGTERM: what was counted since the last rollup is written on the way out

    second = bus_factory(db=db)
    history = fetch_json(second.http, "/api/traffic", timeout=5, since="10m", service=ECHO)
    assert sum(p["requests"] for p in history["points"]) == CALLS
    by_caller = fetch_json(second.http, "/api/traffic", timeout=5, since="10m", by="caller")
    callers = {n for p in by_caller["points"] for n in p.get("series", {})}
    assert callers == {"billing-1"}
    # The edge seen before the restart is still on the graph, and its caller keeps its name.
    topology = fetch_json(second.http, "/api/topology", timeout=5)
    assert [(e["caller"], e["node"]) for e in topology["observed_edges"]] == [
        ("billing-1", "echo-1")
    ]
    # Counters start again from zero, as Prometheus expects of a restarted process.
    assert "powerbus_requests_total{" not in fetch_text(second.http, "/metrics", timeout=5)


def test_traffic_and_topology_commands(bus, node_factory):
    node_factory("echo", bus=bus, node_id="echo-1")
    send(bus.grpc, 10, caller="crm-1")

    def counted() -> dict:
        data = json.loads(powerbus("traffic", "--http", bus.http, "--json").stdout)
        return data if data["totals"]["requests_total"] == 10 else {}

    overview = eventually_sync(counted, timeout=10, what="10 calls in the overview")
    assert [n["node_id"] for n in overview["nodes"]] == ["echo-1"]

    screen = powerbus("traffic", "--http", bus.http, "--once")
    assert screen.returncode == 0, screen.stderr
    assert "echo-1" in screen.stdout and "no active alerts" in screen.stdout
    live = powerbus("traffic", "--http", bus.http, "--count", "2", "--interval", "0.2")
    assert live.returncode == 0 and "powerbus traffic" in live.stdout
    one = powerbus("traffic", "--http", bus.http, "--service", ECHO, "--once")
    assert "crm-1" in one.stdout and "by caller" in one.stdout

    topology = json.loads(powerbus("topology", "--http", bus.http, "--json").stdout)
    assert topology["observed_edges"][0]["caller"] == "crm-1"
    dot = powerbus("topology", "--http", bus.http, "--dot").stdout
    assert dot.startswith("digraph powerbus {") and '"caller:crm-1"' in dot
    tree = powerbus("topology", "--http", bus.http)
    assert ECHO in tree.stdout and "called by crm-1" in tree.stdout


def test_commands_say_when_the_bus_is_not_there():
    result = powerbus("traffic", "--http", "127.0.0.1:9", "--once", "--timeout", "1")
    assert result.returncode == 1
    assert "cannot reach the bus's HTTP port at 127.0.0.1:9" in result.stderr
