"""/metrics over routed and reported calls: what Prometheus scrapes from the bus."""

from __future__ import annotations

import re

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from monitoring_support import ECHO, get_json, get_text, quick

from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.monitoring import LATENCY_BUCKETS_S
from powerbus.nodes.echo import EchoNode
from powerbus.traffic.v1 import traffic_pb2, traffic_pb2_grpc


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if match and all(f'{k}="{v}"' in match[1] for k, v in labels.items()):
            total += float(match[2])
    return total


def report(sequence: int, *, count: int = 4, buckets: list[int] | None = None, start: int = 100):
    stats = traffic_pb2.CallStats(
        caller="crm-1",
        service=ECHO,
        method="Echo",
        node_id="echo-1",
        code="OK",
        count=count,
        latency_sum_s=0.004 * count,
        latency_bucket_counts=buckets if buckets is not None else [],
        bytes_in=10 * count,
        bytes_out=20 * count,
    )
    return traffic_pb2.ReportTrafficRequest(
        reporter="crm-1",
        sequence=sequence,
        origin=traffic_pb2.CALL_ORIGIN_PROXYLESS,
        window_start=Timestamp(seconds=start),
        window_end=Timestamp(seconds=start + 10),
        calls=[stats],
    )


async def test_routed_calls_are_exported_with_bounded_labels(bus_server, runners):
    bus = await bus_server(monitoring=quick(max_callers=2))
    await runners(EchoNode(), bus=bus, node_id="echo-1")
    async with grpc.aio.insecure_channel(str(bus.grpc_address)) as channel:
        stub = echo_pb2_grpc.EchoStub(channel)
        for caller in ("billing-1", "billing-1", "crm-1", "meter-4711", "meter-4712"):
            metadata = (("x-powerbus-caller", caller),)
            await stub.Echo(echo_pb2.EchoRequest(message="x"), timeout=5, metadata=metadata)
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.Echo(echo_pb2.EchoRequest(fail_code=5), timeout=5)
    text = await get_text(bus, "/metrics")
    assert metric(text, "powerbus_requests_total", service=ECHO) == 6
    assert metric(text, "powerbus_requests_total", caller="billing-1", code="OK") == 2
    assert metric(text, "powerbus_requests_total", caller="other") == 3  # meters and the peer
    assert metric(text, "powerbus_request_errors_total", service=ECHO) == 1
    assert metric(text, "powerbus_request_duration_seconds_count", node="echo-1") == 6
    bounds = re.findall(r'powerbus_request_duration_seconds_bucket\{[^}]*le="([^"]+)"', text)
    assert [float(b) for b in bounds if b != "+Inf"][: len(LATENCY_BUCKETS_S)] == list(
        LATENCY_BUCKETS_S
    )
    assert metric(text, "powerbus_request_bytes_total", service=ECHO) > 0
    assert metric(text, "powerbus_node_up", node="echo-1", health="up") == 1
    assert metric(text, "powerbus_service_healthy_nodes", service=ECHO) == 1
    assert metric(text, "powerbus_label_values_folded_total", label="caller") == 3


async def test_proxyless_reports_are_counted_once_with_their_origin(bus_server):
    bus = await bus_server(monitoring=quick())
    async with grpc.aio.insecure_channel(str(bus.grpc_address)) as channel:
        reports = traffic_pb2_grpc.TrafficReportsStub(channel)
        buckets = [0] * (len(LATENCY_BUCKETS_S) + 1)
        buckets[10] = 4
        first = await reports.ReportTraffic(report(1, buckets=buckets), timeout=5)
        again = await reports.ReportTraffic(report(1, buckets=buckets), timeout=5)
        restarted = await reports.ReportTraffic(report(1, start=500), timeout=5)
    assert (first.duplicate, again.duplicate, restarted.duplicate) == (False, True, False)
    text = await get_text(bus, "/metrics")
    assert metric(text, "powerbus_requests_total", origin="proxyless", caller="crm-1") == 8
    overview = await get_json(bus, "/api/overview")
    (echo,) = [s for s in overview["services"] if s["service"] == ECHO]
    assert (echo["requests_total"], echo["state"]) == (8, "unregistered")
    topology = await get_json(bus, "/api/topology")
    assert [(e["caller"], e["node"], e["total"]) for e in topology["observed_edges"]] == [
        ("crm-1", "echo-1", 8)
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"reporter": ""}, "reporter"),
        ({"buckets": [1, 2, 3]}, "calls[0].latency_bucket_counts"),
        ({"buckets": [0] * (len(LATENCY_BUCKETS_S) + 1)}, "calls[0].latency_bucket_counts"),
    ],
)
async def test_a_bad_report_is_refused_naming_the_field(bus_server, change, field):
    bus = await bus_server(monitoring=quick())
    request = report(1, buckets=change.get("buckets"))
    if "reporter" in change:
        request.reporter = change["reporter"]
    async with grpc.aio.insecure_channel(str(bus.grpc_address)) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await traffic_pb2_grpc.TrafficReportsStub(channel).ReportTraffic(request, timeout=5)
    assert failure.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field in (failure.value.details() or "")


async def test_a_flood_of_reports_is_refused_past_the_reporters_budget(bus_server):
    """One host may send ``report_burst`` reports at once, then ``report_rate`` a second:
    a flood cannot move the numbers alerts are raised on (issue 13, item 7)."""
    bus = await bus_server(monitoring=quick(report_rate=0.1, report_burst=5))
    codes = []
    async with grpc.aio.insecure_channel(str(bus.grpc_address)) as channel:
        reports = traffic_pb2_grpc.TrafficReportsStub(channel)
        for sequence in range(1, 31):
            try:
                await reports.ReportTraffic(report(sequence, count=500), timeout=5)
                codes.append(grpc.StatusCode.OK)
            except grpc.aio.AioRpcError as error:
                codes.append(error.code())
                refusal = error.details() or ""
    assert codes[:5] == [grpc.StatusCode.OK] * 5
    assert set(codes[6:]) == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert "traffic reports from 127.0.0.1: more than the limit of 5 at once" in refusal
    text = await get_text(bus, "/metrics")
    assert metric(text, "powerbus_requests_total", origin="proxyless") <= 6 * 500
