"""Structured logs and the access log (issue 14, "what else"): ``--log-format json`` writes
one JSON object a line, on the bus and on nodes; ``--access-log`` one line per routed call,
like Envoy's."""

from __future__ import annotations

import contextlib
import json

import grpc

from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.nodes.testing import eventually_sync


def json_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def test_json_logs_and_an_access_log_of_routed_calls(bus_factory, node_factory):
    bus = bus_factory(log_format="json", access_log=True)
    node = node_factory("echo", bus=bus, node_id="echo-1", log_format="json")
    with grpc.insecure_channel(bus.grpc) as channel:
        stub = echo_pb2_grpc.EchoStub(channel)
        metadata = (("x-powerbus-caller", "billing-1"),)
        stub.Echo(echo_pb2.EchoRequest(message="a"), timeout=5, metadata=metadata)
        with contextlib.suppress(grpc.RpcError):
            stub.Echo(echo_pb2.EchoRequest(fail_code=5), timeout=5, metadata=metadata)

    def access() -> list[dict]:
        return [e for e in json_lines(bus.stderr_path) if e["logger"] == "powerbus.access"]

    eventually_sync(lambda: len(access()) == 2, timeout=10, what="two access log lines")
    ok, failed = access()
    assert {k: ok[k] for k in ("service", "method", "code", "node", "caller", "attempts")} == {
        "service": "powerbus.echo.v1.Echo",
        "method": "Echo",
        "code": "OK",
        "node": "echo-1",
        "caller": "billing-1",
        "attempts": 1,
    }
    assert failed["code"] == "NOT_FOUND" and ok["duration_ms"] >= 0
    assert ok["msg"].startswith("[") and '"/powerbus.echo.v1.Echo/Echo" OK' in ok["msg"]
    assert all({"ts", "level", "logger", "msg"} <= set(e) for e in json_lines(bus.stderr_path))
    node.stop()
    assert any(e["msg"].startswith("echo-1") for e in json_lines(node.stderr_path))


def test_no_access_log_unless_asked(bus, node_factory):
    node_factory("echo", bus=bus, node_id="echo-1")
    with grpc.insecure_channel(bus.grpc) as channel:
        echo_pb2_grpc.EchoStub(channel).Echo(echo_pb2.EchoRequest(message="a"), timeout=5)
    assert "powerbus.access" not in bus.stderr_path.read_text(encoding="utf-8")
