"""The ``powerbus`` command line as a user runs it: real processes, real output."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

POWERBUS = [sys.executable, "-m", "powerbus.bus"]
SUBCOMMANDS = [
    "bus",
    "node",
    "nodes",
    "call",
    "demo",
    "idl generate",
    "idl check",
    "traffic",
    "topology",
    "policy show",
    "policy set",
    "policy list",
    "policy keys",
    "sim legacy-cis",
    "config check",
    "admin drain",
    "admin disable",
    "admin enable",
    "admin weight",
    "admin deregister",
    "admin purge",
    "alerts list",
    "alerts ack",
    "alerts silence",
    "alerts unsilence",
]


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*POWERBUS, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("subcommand", SUBCOMMANDS)
def test_every_subcommand_has_help_with_an_example(subcommand):
    result = run(*subcommand.split(), "--help")
    assert result.returncode == 0, result.stderr
    assert "Example" in result.stdout


def test_call_prints_the_reply_as_json(bus, node_factory):
    node_factory("echo", bus=bus, node_id="echo-1")
    result = run(
        "call", "powerbus.echo.v1.Echo/Echo", "--bus", bus.grpc, "--json", '{"message": "你好"}'
    )
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["message"] == "你好" and reply["node_id"] == "echo-1"


def test_call_streams_one_json_object_per_line(bus, node_factory):
    node_factory("echo", bus=bus, node_id="echo-1")
    result = run(
        "call",
        "powerbus.echo.v1.Echo/Expand",
        "--bus",
        bus.grpc,
        "--json",
        '{"message": "m", "count": 3}',
    )
    assert result.returncode == 0, result.stderr
    assert [json.loads(line).get("index", 0) for line in result.stdout.splitlines()] == [0, 1, 2]


def test_call_client_stream_takes_an_array(bus, node_factory):
    node_factory("echo", bus=bus, node_id="echo-1")
    result = run(
        "call",
        "powerbus.echo.v1.Echo/Collect",
        "--bus",
        bus.grpc,
        "--json",
        '[{"message": "a"}, {"message": "b"}]',
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["node_id"] == "echo-1"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["powerbus.nowhere.v1.Nothing/Do"], "powerbus.nowhere.v1.Nothing is not registered"),
        (["powerbus.echo.v1.Echo/Shout"], "has no method Shout"),
        (["powerbus.echo.v1.Echo/Echo", "--json", "{not json"], "json: not valid JSON"),
        (
            ["powerbus.echo.v1.Echo/Echo", "--json", '{"mesage": 1}'],
            "json: not a valid powerbus.echo.v1.EchoRequest",
        ),
        (["Echo"], "method: expected SERVICE/METHOD"),
    ],
)
def test_call_errors_name_what_was_wrong(bus, node_factory, args, expected):
    node_factory("echo", bus=bus, node_id="echo-1")
    result = run("call", *args, "--bus", bus.grpc)
    assert result.returncode == 1
    assert expected in result.stderr


def test_nodes_lists_registered_nodes_as_json(bus, node_factory):
    node_factory("echo", bus=bus, node_id="echo-1")
    node_factory("echo", bus=bus, node_id="echo-2")
    result = run("nodes", "--bus", bus.grpc, "--json")
    assert result.returncode == 0, result.stderr
    nodes = {n["node_id"]: n for n in json.loads(result.stdout)["nodes"]}
    assert set(nodes) == {"echo-1", "echo-2"}
    assert nodes["echo-1"]["health"] == "up"
    assert nodes["echo-1"]["services"] == ["powerbus.echo.v1.Echo"]
    assert nodes["echo-1"]["lease_age_s"] >= 0


def test_nodes_table_for_people(bus, node_factory):
    node_factory("echo", bus=bus, node_id="echo-1")
    result = run("nodes", "--bus", bus.grpc)
    assert result.returncode == 0, result.stderr
    assert "echo-1" in result.stdout and "up" in result.stdout


def test_unreachable_bus_is_a_clear_error():
    result = run("nodes", "--bus", "127.0.0.1:1", "--timeout", "1")
    assert result.returncode == 1
    assert "the bus at 127.0.0.1:1" in result.stderr


def test_bad_listen_address_is_named():
    result = run("bus", "--grpc", "nowhere", "--http", "127.0.0.1:0")
    assert result.returncode == 1
    assert "--grpc" in result.stderr and "nowhere" in result.stderr
