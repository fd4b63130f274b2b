"""A port already served is refused at once, naming the port (issue 14, defect 1)."""

from __future__ import annotations

import subprocess
import sys

POWERBUS = [sys.executable, "-m", "powerbus.bus"]


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*POWERBUS, *args], capture_output=True, text=True, timeout=timeout)


def test_a_second_bus_on_a_used_grpc_port_fails_at_once(bus, tmp_path):
    port = bus.grpc.rpartition(":")[2]
    result = run(
        "bus",
        "--grpc",
        bus.grpc,
        "--http",
        "127.0.0.1:0",
        "--db",
        f"sqlite:///{tmp_path / 'second.db'}",
    )
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "address already in use" in last and port in last, result.stderr
    assert "Traceback" not in result.stderr


def test_a_node_listening_on_the_bus_port_fails_at_once(bus):
    port = bus.grpc.rpartition(":")[2]
    result = run("node", "echo", "--bus", bus.grpc, "--listen", bus.grpc, "--id", "echo-x")
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "address already in use" in last and port in last, result.stderr


def test_a_node_listening_on_another_node_port_fails_at_once(bus, node_factory):
    first = node_factory("echo", bus=bus, node_id="echo-1")
    result = run("node", "echo", "--bus", bus.grpc, "--listen", first.address, "--id", "echo-2")
    assert result.returncode == 1, result.stderr
    assert "address already in use" in result.stderr
