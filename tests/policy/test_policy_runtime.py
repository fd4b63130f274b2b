"""Policy changes at run time: set through one bus, taken up by another sharing the
database within a few seconds, and the routing changes with it. Real processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import grpc
import pytest

from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.nodes.testing import eventually_sync
from powerbus.policy.v1 import policy_pb2, policy_pb2_grpc

pytestmark = pytest.mark.timeout(120)

ECHO = "powerbus.echo.v1.Echo"
CLI = [sys.executable, "-m", "powerbus.bus"]


def powerbus(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def two_buses(bus_factory, tmp_path):
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    return bus_factory(db=db), bus_factory(db=db)


def get_policy(address: str, service: str) -> policy_pb2.Policy:
    with grpc.insecure_channel(address) as channel:
        return policy_pb2_grpc.PoliciesStub(channel).GetPolicy(
            policy_pb2.GetPolicyRequest(service=service), timeout=5
        )


def served_by(address: str, key: str, n: int = 8) -> set[str]:
    with grpc.insecure_channel(address) as channel:
        stub = echo_pb2_grpc.EchoStub(channel)
        return {
            stub.Echo(
                echo_pb2.EchoRequest(message="m"), timeout=5, metadata=(("x-powerbus-key", key),)
            ).node_id
            for _ in range(n)
        }


def test_set_on_one_bus_reaches_the_other_and_changes_routing(two_buses, node_factory):
    first, second = two_buses
    for i in (1, 2, 3):
        node_factory("echo", bus=first, node_id=f"echo-{i}")
    eventually_sync(lambda: len(served_by(second.grpc, "meter-1")) == 3, timeout=15, what="3 nodes")

    result = powerbus(
        "policy", "set", ECHO, "picker=ring_hash", "retry.max_attempts=2",
        "--by", "test", "--bus", first.grpc, "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["overrides"] == {"picker": "ring_hash", "retry.max_attempts": "2"}
    assert shown["settings"]["picker"] == "ring_hash" and shown["updated_by"] == "test"

    started = time.monotonic()
    eventually_sync(
        lambda: get_policy(second.grpc, ECHO).settings["picker"] == "ring_hash",
        timeout=5,
        what="the second bus to take the policy up",
    )
    assert time.monotonic() - started < 5
    # Same key, same node, through either bus.
    for key in ("meter-1", "meter-2", "account-9"):
        assert len(served_by(second.grpc, key)) == 1
        assert served_by(second.grpc, key) == served_by(first.grpc, key)

    reset = powerbus("policy", "set", ECHO, "--reset", "--bus", second.grpc, "--json")
    assert reset.returncode == 0, reset.stderr
    eventually_sync(
        lambda: len(served_by(first.grpc, "meter-1", n=6)) == 3, timeout=5, what="round robin"
    )


def test_bad_keys_are_refused_by_name(bus):
    # --force: no node serves ECHO here, and the keys are what is under test.
    result = powerbus("policy", "set", ECHO, "retry.max_attemps=2", "--force", "--bus", bus.grpc)
    assert result.returncode == 1
    assert "INVALID_ARGUMENT" in result.stderr and "retry.max_attemps" in result.stderr
    result = powerbus(
        "policy", "set", ECHO, "outlier.base_ejection=soon", "--force", "--bus", bus.grpc
    )
    assert result.returncode == 1 and "outlier.base_ejection: not a duration" in result.stderr
    result = powerbus("policy", "set", "", "picker=random", "--force", "--bus", bus.grpc)
    assert result.returncode == 1 and "service: required" in result.stderr


def test_show_list_and_keys(bus):
    assert powerbus("policy", "set", "*", "timeout=3s", "--bus", bus.grpc).returncode == 0
    shown = json.loads(powerbus("policy", "show", ECHO, "--bus", bus.grpc, "--json").stdout)
    assert shown["settings"]["timeout"] == "3s" and shown["overrides"] == {}
    listed = json.loads(powerbus("policy", "list", "--bus", bus.grpc, "--json").stdout)
    assert listed == {"policies": [{"service": "*", "overrides": {"timeout": "3s"}}]}
    table = powerbus("policy", "show", ECHO, "--bus", bus.grpc)
    assert table.returncode == 0 and "timeout" in table.stdout
    keys = json.loads(powerbus("policy", "keys", "--json").stdout)
    assert keys["picker"] == "round_robin" and "breaker.open" in keys


def test_watch_streams_changes(bus):
    with grpc.insecure_channel(bus.grpc) as channel:
        stub = policy_pb2_grpc.PoliciesStub(channel)
        stream = stub.WatchPolicies(policy_pb2.WatchPoliciesRequest(services=[ECHO]), timeout=20)
        assert next(stream).settings["picker"] == "round_robin"
        stub.SetPolicy(
            policy_pb2.SetPolicyRequest(service=ECHO, set={"picker": "peak_ewma"}), timeout=5
        )
        assert next(stream).settings["picker"] == "peak_ewma"
        stub.SetPolicy(policy_pb2.SetPolicyRequest(service="*", set={"timeout": "2s"}), timeout=5)
        changed = next(stream)
        assert (changed.service, changed.settings["timeout"]) == (ECHO, "2s")
        stream.cancel()


def test_policy_file_sets_defaults(bus_factory, tmp_path):
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(
        '[policy]\npicker = "least_request"\n[policy.services."powerbus.echo.v1.Echo"]\n'
        'timeout = "4s"\n',
        encoding="utf-8",
    )
    bus = bus_factory(policy_file=policy_file)
    policy = get_policy(bus.grpc, ECHO)
    assert (policy.settings["picker"], policy.settings["timeout"]) == ("least_request", "4s")
