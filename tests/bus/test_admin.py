"""Operator actions (issue 14, "what else"): ``powerbus admin`` drains, disables and
enables a node, changes its weight, marks it down, purges the down ones; the router
follows and ``powerbus nodes`` shows it."""

from __future__ import annotations

import json
import subprocess
import sys

import grpc

from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.nodes.testing.waiting import eventually_sync

POWERBUS = [sys.executable, "-m", "powerbus.bus"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*POWERBUS, *args], capture_output=True, text=True, timeout=60)


def nodes(bus) -> dict[str, dict]:
    result = run("nodes", "--bus", bus.grpc, "--all", "--json")
    assert result.returncode == 0, result.stderr
    return {n["node_id"]: n for n in json.loads(result.stdout)["nodes"]}


def served(bus, calls: int = 12) -> set[str]:
    with grpc.insecure_channel(bus.grpc) as channel:
        stub = echo_pb2_grpc.EchoStub(channel)
        return {
            stub.Echo(echo_pb2.EchoRequest(message="a"), timeout=5).node_id for _ in range(calls)
        }


def test_drain_enable_weight_deregister_purge(bus, node_factory):
    node_factory("echo", bus=bus, node_id="echo-1")
    hung = node_factory("echo", bus=bus, node_id="echo-2")
    eventually_sync(
        lambda: served(bus) == {"echo-1", "echo-2"},
        timeout=10,
        interval=0.1,
        what="both nodes to serve",
    )

    result = run("admin", "drain", "echo-1", "--http", bus.http, "--grace", "5")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "echo-1: drained"
    assert nodes(bus)["echo-1"]["health"] == "draining"
    assert served(bus) == {"echo-2"}

    assert run("admin", "enable", "echo-1", "--http", bus.http).returncode == 0
    eventually_sync(
        lambda: served(bus) == {"echo-1", "echo-2"},
        timeout=10,
        interval=0.1,
        what="echo-1 back in rotation",
    )

    assert run("admin", "weight", "echo-2", "7", "--http", bus.http).returncode == 0
    assert nodes(bus)["echo-2"]["weight"] == 7
    bad = run("admin", "weight", "echo-2", "0", "--http", bus.http)
    assert bad.returncode == 1 and "weight: must be 1..10000" in bad.stderr

    hung.pause()  # gone for good, as far as anyone can tell, but its lease still runs
    assert run("admin", "deregister", "echo-2", "--http", bus.http).returncode == 0
    assert nodes(bus)["echo-2"]["health"] == "left"
    missing = run("admin", "disable", "echo-9", "--http", bus.http)
    assert missing.returncode == 1 and "no node 'echo-9'" in missing.stderr

    purge = run("admin", "purge", "--http", bus.http, "--json")
    assert purge.returncode == 0, purge.stderr
    assert "echo-2" in json.loads(purge.stdout)["purged"]
    assert "echo-2" not in nodes(bus)
    hung.kill()
