"""OpenTelemetry tracing (issue 14, "what else"): one trace from a client through the bus
to a node and on through the node's own call through the bus, exported over OTLP to a real
receiver process; W3C ``traceparent`` crosses every hop (gRPC and the node link)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from tracing_support import read_spans, start

from powerbus.bus.kernel.tracing import start_tracing
from powerbus.crm.v1 import crm_pb2, crm_pb2_grpc
from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.nodes.sdk.channel import BusChannel
from powerbus.nodes.sdk.proxyless import ProxylessClient
from powerbus.nodes.testing import eventually_sync

GET_CUSTOMER = "powerbus.crm.v1.Customers/GetCustomer"
ECHO = "powerbus.echo.v1.Echo/Echo"
EXPAND = "powerbus.echo.v1.Echo/Expand"


@pytest.fixture
def receiver(powerbus_processes: Any) -> Iterator[tuple[str, Any]]:
    out = powerbus_processes.directory / "spans.jsonl"
    handle = start(powerbus_processes, "receiver", "otlp-receiver", "--out", str(out))
    yield f"http://{handle.state['grpc']}", out


def one(spans: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [s for s in spans if all(s.get(k) == v for k, v in match.items())]
    assert len(found) == 1, f"expected one span {match}, got {found}\nall: {spans}"
    return found[0]


async def _client_calls(bus: str, endpoint: str) -> tuple[str, str, list[int]]:
    tracing = start_tracing(endpoint, service="test-client", instance="")
    assert tracing is not None
    try:
        async with BusChannel(target=bus, caller="client-1", tracing=tracing) as channel:
            customers = channel.stub(crm_pb2_grpc.CustomersStub)
            reply = await customers.GetCustomer(
                crm_pb2.GetCustomerRequest(customer_id="c-42"), timeout=10
            )
            expand = channel.stub(echo_pb2_grpc.EchoStub).Expand
            request = echo_pb2.ExpandRequest(message="s", count=3)
            streamed = [r.index async for r in expand(request, timeout=10)]
        async with ProxylessClient(bus=bus, caller="client-1", tracing=tracing) as client:
            await client.wait_for_nodes("powerbus.echo.v1.Echo", timeout=10)
            echo = client.stub(echo_pb2_grpc.EchoStub)
            direct = await echo.Echo(echo_pb2.EchoRequest(message="direct"), timeout=10)
    finally:
        await asyncio.to_thread(tracing.shutdown)
    return reply.name, direct.message, streamed


def test_one_trace_spans_client_bus_node_and_the_nodes_own_call(
    bus_factory: Any, node_factory: Any, powerbus_processes: Any, receiver: tuple[str, Any]
) -> None:
    endpoint, out = receiver
    bus = bus_factory(otlp_endpoint=endpoint, log_format="json", access_log=True)
    node_factory("echo", bus=bus, node_id="echo-1", otlp_endpoint=endpoint)
    start(
        powerbus_processes,
        "relay",
        "relay-1",
        "--bus",
        bus.grpc,
        "--id",
        "relay-1",
        "--otlp-endpoint",
        endpoint,
    )
    named, direct, streamed = asyncio.run(_client_calls(bus.grpc, endpoint))
    assert (named, direct, streamed) == ("c-42", "direct", [0, 1, 2])

    # client → bus → relay → (relay's call) → bus → echo: 8 spans, plus 3 of the stream
    # and 3 proxyless ones; each process exports in its own batches.
    def exported() -> bool:
        spans = read_spans(out)
        return len(spans) >= 14 and sum(s["service"] == "echo" for s in spans) >= 3

    eventually_sync(exported, timeout=20, what="14 spans exported, 3 of them by echo-1")
    spans = read_spans(out)
    client = one(spans, service="test-client", name=GET_CUSTOMER, kind="CLIENT")
    trace = [s for s in spans if s["trace_id"] == client["trace_id"]]

    def child(parent: dict[str, Any], **match: Any) -> dict[str, Any]:
        return one(trace, parent_id=parent["span_id"], **match)

    routed = child(client, service="powerbus-bus", name=GET_CUSTOMER, kind="SERVER")
    attempt = child(routed, service="powerbus-bus", kind="CLIENT", name="attempt relay-1")
    assert attempt["attributes"]["powerbus.node"] == "relay-1"
    assert attempt["attributes"]["powerbus.attempt"] == 1
    relay = child(attempt, service="relay", instance="relay-1", kind="SERVER")
    assert relay["name"] == GET_CUSTOMER
    downstream = child(relay, service="relay", name=ECHO, kind="CLIENT")
    routed_echo = child(downstream, service="powerbus-bus", name=ECHO, kind="SERVER")
    attempt_echo = child(routed_echo, service="powerbus-bus", name="attempt echo-1")
    served = child(attempt_echo, service="echo", instance="echo-1", name=ECHO, kind="SERVER")
    chain = [client, routed, attempt, relay, downstream, routed_echo, attempt_echo, served]
    assert len(trace) == len(chain), trace
    assert not any(s["error"] for s in chain)
    assert served["attributes"]["rpc.grpc.status_code"] == 0

    # The bus's access log names the trace and the bus's span of each routed call.
    logged = [json.loads(line) for line in bus.stderr_path.read_text().splitlines()]
    access = one(logged, logger="powerbus.access", method="GetCustomer")
    assert (access["trace_id"], access["span_id"]) == (client["trace_id"], routed["span_id"])

    # A stream through the bus goes to one node: the bus's span is the node's parent.
    stream = one(spans, service="test-client", name=EXPAND, kind="CLIENT")
    routed_stream = one(spans, parent_id=stream["span_id"], service="powerbus-bus", name=EXPAND)
    assert routed_stream["attributes"]["powerbus.node"] == "echo-1"
    one(spans, parent_id=routed_stream["span_id"], service="echo", name=EXPAND, kind="SERVER")
    assert stream["attributes"]["rpc.grpc.status_code"] == 0

    # The proxyless client calls the node itself: its span, an attempt, the node's span.
    call = one(spans, service="test-client", name=ECHO, kind="CLIENT")
    p_attempt = one(spans, parent_id=call["span_id"], name="attempt echo-1")
    p_served = one(spans, parent_id=p_attempt["span_id"], service="echo", kind="SERVER")
    assert p_served["trace_id"] == call["trace_id"] != client["trace_id"]
