"""The CORBA gateway traces (issue 14, OpenTelemetry): IIOP brings no trace context, so each
CORBA call starts a trace at the gateway, and the bus and the node that serves it continue
it. Spans go to the real OTLP receiver process of tests/tracing (run as a script)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from corba_support import run_client

from powerbus.bus.kernel.supervisor import ProcessGroup, ProcessHandle
from powerbus.nodes.testing import eventually_sync

RECEIVER = Path(__file__).resolve().parents[1] / "tracing" / "tracing_support.py"
ECHO = "powerbus.echo.v1.Echo/Echo"


def spans_in(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


def test_a_corba_call_is_one_trace_from_the_gateway_to_the_node(
    powerbus_processes: ProcessGroup, corba_env: dict[str, str], client_stubs: Path
) -> None:
    group = powerbus_processes
    out = group.directory / "spans.jsonl"
    state = group.directory / "otlp-receiver.json"
    receiver = ProcessHandle(
        name="otlp-receiver",
        args=[
            sys.executable,
            str(RECEIVER),
            "receiver",
            "--state-file",
            str(state),
            "--out",
            str(out),
        ],
        directory=group.directory,
        state_file=state,
    )
    group.handles.append(receiver)
    endpoint = f"http://{receiver.wait_ready(timeout=30)['grpc']}"
    bus = group.start_bus(env=corba_env, otlp_endpoint=endpoint)
    group.start_node("echo", bus=bus, node_id="echo-1", env=corba_env, otlp_endpoint=endpoint)
    iors = group.directory / "gateway.json"
    group.start_node(
        "corba-gateway",
        bus=bus,
        node_id="corba-1",
        env=corba_env,
        ior_file=iors,
        otlp_endpoint=endpoint,
    )
    result = run_client(client_stubs, f"ior:{iors}", "echo")
    assert result

    def gateway_echoes(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [s for s in spans if s["service"] == "corba-gateway" and s["name"] == ECHO]

    # The scenario calls Echo once, then five times with a failure code each.
    # Each process exports in batches of its own, so the bus's spans of the first call may
    # land after the gateway's and the node's: wait for the whole chain of it.
    def exported() -> bool:
        spans = spans_in(out)
        served = [s for s in spans if s["service"] == "echo" and s["name"] == ECHO]
        if len(gateway_echoes(spans)) < 6 or len(served) < 6:
            return False
        root = next((s for s in gateway_echoes(spans) if not s["error"]), None)
        if root is None:
            return False
        trace = {s["span_id"]: s for s in spans if s["trace_id"] == root["trace_id"]}
        node = next((s for s in trace.values() if s["service"] == "echo"), None)
        while node is not None and node["parent_id"]:
            node = trace.get(node["parent_id"])
        return node is not None

    eventually_sync(exported, timeout=20, what="the Echo spans and the first call's whole chain")
    spans = spans_in(out)
    gateway = gateway_echoes(spans)
    assert sorted(s["error"] for s in gateway) == [False] + [True] * 5
    root = next(s for s in gateway if not s["error"])
    assert root["parent_id"] == "" and root["kind"] == "SERVER"
    assert root["attributes"]["powerbus.role"] == "corba-gateway"
    assert root["attributes"]["powerbus.corba.peer"]
    # The node's upkeep (registration, heartbeats, traffic reports) starts no traces.
    assert not [s for s in spans if "Registry/" in s["name"] or "TrafficReports/" in s["name"]]
    trace = {s["span_id"]: s for s in spans if s["trace_id"] == root["trace_id"]}
    served = next(s for s in trace.values() if s["service"] == "echo")
    # echo-1's span ← the bus's attempt ← the bus's span ← the gateway's span.
    chain = [served]
    while chain[-1]["parent_id"]:
        chain.append(trace[chain[-1]["parent_id"]])
    assert [(s["service"], s["kind"]) for s in chain] == [
        ("echo", "SERVER"),
        ("powerbus-bus", "CLIENT"),
        ("powerbus-bus", "SERVER"),
        ("corba-gateway", "SERVER"),
    ]
