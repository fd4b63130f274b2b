"""The command line as an operator meets it (issue 14, defect 4): version, each kind's own
options, log levels, examples one per line, HOST:PORT checked, one-line hints, ``call -d``,
80-column tables, and ``policy set`` that catches typos and records who changed it."""

from __future__ import annotations

import getpass
import json
import re
import socket
import subprocess
import sys

import pytest

POWERBUS = [sys.executable, "-m", "powerbus.bus"]
ECHO = "powerbus.echo.v1.Echo"


def run(
    *args: str, timeout: float = 30, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*POWERBUS, *args], capture_output=True, text=True, timeout=timeout, input=stdin
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_version():
    result = run("--version")
    assert result.returncode == 0
    assert re.fullmatch(r"powerbus \d+\.\d+\.\d+\S*\n", result.stdout)


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("corba-gateway", ["--iiop", "--naming-prefix", "--corba-timeout", "--stubs-dir"]),
        ("legacy-cis", ["--mapping", "--legacy-timeout", "--naming"]),
    ],
)
def test_node_kind_help_shows_the_kind_own_options(kind, options):
    result = run("node", kind, "--help")
    assert result.returncode == 0, result.stderr
    assert "--bus" in result.stdout and f"Options of {kind}" in result.stdout
    for option in options:
        assert f"  {option} VALUE" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_nodes_take_a_log_level(bus, node_factory):
    node = node_factory("echo", bus=bus, node_id="echo-1", log_level="WARNING")
    node.stop()
    assert " INFO " not in node.stderr_path.read_text(encoding="utf-8")
    result = run("node", "echo", "--bus", bus.grpc, "--log-level", "LOUD")
    assert result.returncode == 2 and "--log-level" in result.stderr


@pytest.mark.parametrize("command", ["traffic", "topology", "call", "node"])
def test_help_examples_are_one_per_line(command):
    result = run(command, "--help")
    assert result.returncode == 0
    for line in result.stdout.splitlines():
        assert line.count("powerbus ") <= 1, line


@pytest.mark.parametrize("address", ["50051", "http://127.0.0.1:50051", "127.0.0.1"])
@pytest.mark.parametrize("command", [["nodes"], ["policy", "show", ECHO], ["node", "echo"]])
def test_bus_must_be_host_port(command, address):
    result = run(*command, "--bus", address)
    assert result.returncode == 2
    assert "HOST:PORT" in result.stderr and address in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["nodes"],
        ["call", f"{ECHO}/Echo", "-d", "{}"],
        ["bill", "quote", "--tariff", "cn-beijing-residential", "--kwh", "1"],
        ["bill", "show", "B1"],
        ["meters", "list"],
        ["events", "replay", "--source", "billing-1", "--from", "1"],
        ["events", "tail", "--seconds", "3"],
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_an_unreachable_bus_is_one_line_with_a_hint(command):
    line = one_line(run(*command, "--bus", "127.0.0.1:1", "--timeout", "2"))
    assert line.startswith("error: cannot reach the bus at 127.0.0.1:1"), line
    assert "--bus" in line


def test_http_at_the_grpc_port_is_one_line(bus):
    for command in (["traffic", "--once"], ["topology"]):
        result = run(*command, "--http", bus.grpc, "--timeout", "3")
        assert result.returncode == 1
        assert "the bus's HTTP port" in one_line(result)
    result = run("nodes", "--bus", bus.http, "--timeout", "3")
    assert result.returncode == 1
    assert "gRPC" in one_line(result)


def test_call_reads_the_request_from_a_file_or_stdin(bus, node_factory, tmp_path):
    node_factory("echo", bus=bus, node_id="echo-1")
    request = tmp_path / "request.json"
    request.write_text('{"message": "从文件"}', encoding="utf-8")
    result = run("call", f"{ECHO}/Echo", "--bus", bus.grpc, "-d", f"@{request}")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["message"] == "从文件"
    result = run("call", f"{ECHO}/Echo", "--bus", bus.grpc, "-d", "@-", stdin='{"message": "in"}')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["message"] == "in"


def test_call_takes_a_plain_object_for_a_unary_request(bus, node_factory):
    node_factory("echo", bus=bus, node_id="echo-1")
    result = run("call", f"{ECHO}/Echo", "--bus", bus.grpc, "--json", '[{"message": "a"}]')
    assert result.returncode == 1
    assert "takes one request: give a JSON object, not an array" in one_line(result)


def test_tables_fit_80_columns(bus, node_factory):
    node_factory("echo", bus=bus, node_id="echo-with-a-rather-long-node-id-1")
    run("call", f"{ECHO}/Echo", "--bus", bus.grpc, "--json", '{"message": "x"}')
    for command in (
        ["nodes", "--bus", bus.grpc, "--all"],
        ["traffic", "--http", bus.http, "--once"],
        ["topology", "--http", bus.http],
        ["policy", "show", ECHO, "--bus", bus.grpc],
        ["policy", "list", "--bus", bus.grpc],
    ):
        result = subprocess.run(
            [*POWERBUS, *command],
            capture_output=True,
            text=True,
            timeout=30,
            env={**_env(), "COLUMNS": "80"},
        )
        assert result.returncode == 0, result.stderr
        widest = max((len(line) for line in result.stdout.splitlines()), default=0)
        assert widest <= 80, f"{command[0]}: {widest} columns\n{result.stdout}"


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "COLUMNS"}


def test_policy_set_refuses_an_unknown_service_unless_forced(bus, node_factory):
    node_factory("echo", bus=bus, node_id="echo-1")
    typo = "powerbus.echo.v1.Ecko"
    result = run("policy", "set", typo, "retry.max_attempts=2", "--bus", bus.grpc)
    assert result.returncode == 1
    line = one_line(result)
    assert f"no node has registered {typo}" in line and f"did you mean {ECHO}?" in line
    assert "--force" in line
    listed = json.loads(run("policy", "list", "--bus", bus.grpc, "--json").stdout)
    assert typo not in json.dumps(listed)
    forced = run("policy", "set", typo, "retry.max_attempts=2", "--bus", bus.grpc, "--force")
    assert forced.returncode == 0, forced.stderr


def test_policy_set_records_who_changed_it(bus, node_factory):
    node_factory("echo", bus=bus, node_id="echo-1")
    result = run("policy", "set", ECHO, "retry.max_attempts=2", "--bus", bus.grpc, "--json")
    assert result.returncode == 0, result.stderr
    author = json.loads(result.stdout)["updated_by"]
    assert author == f"{getpass.getuser()}@{socket.gethostname()}"


def test_a_change_without_an_author_records_the_peer_host_not_its_port(bus, node_factory):
    import grpc

    from powerbus.policy.v1 import policy_pb2, policy_pb2_grpc

    node_factory("echo", bus=bus, node_id="echo-1")
    with grpc.insecure_channel(bus.grpc) as channel:
        policy = policy_pb2_grpc.PoliciesStub(channel).SetPolicy(
            policy_pb2.SetPolicyRequest(service=ECHO, set={"retry.max_attempts": "2"}), timeout=5
        )
    assert policy.updated_by == "peer 127.0.0.1"
