"""One word for each node state, everywhere (issue 14, defect 2): a node that stopped
cleanly is ``left`` in ``powerbus nodes --all``, ``/api/nodes`` and the dashboard's
overview; one whose lease lapsed is ``down``."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from powerbus.monitoring.http_client import fetch_json


def nodes_cli(bus: str) -> dict[str, str]:
    result = subprocess.run(
        [sys.executable, "-m", "powerbus.bus", "nodes", "--bus", bus, "--all", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return {n["node_id"]: n["health"] for n in json.loads(result.stdout)["nodes"]}


def states(bus) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    api = fetch_json(bus.http, "/api/nodes", timeout=5, include_down="1")
    overview = fetch_json(bus.http, "/api/overview", timeout=5)
    return (
        nodes_cli(bus.grpc),
        {n["node_id"]: n["health"] for n in api["nodes"]},
        {n["node_id"]: n["health"] for n in overview["nodes"]},
    )


def test_left_and_down_read_the_same_in_the_cli_and_the_api(bus_factory, node_factory):
    bus = bus_factory(lease_ttl="1s")
    node_factory("echo", bus=bus, node_id="echo-1").stop()
    node_factory("echo", bus=bus, node_id="echo-2").kill()
    expected = {"echo-1": "left", "echo-2": "down"}
    deadline = time.monotonic() + 10
    while (found := states(bus)) != (expected, expected, expected):
        assert time.monotonic() < deadline, found
        time.sleep(0.2)
