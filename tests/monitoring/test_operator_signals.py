"""Signals operators act on say what happened (issue 14, defect 2): a node's own UNAVAILABLE
is no outage, calls and attempts are counted apart, CORBA calls once, built-in rules hold."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import CollectorRegistry

from powerbus.monitoring import CallOrigin, CallRecord, TrafficRecorder
from powerbus.monitoring.alerts import AlertBook, Finding
from powerbus.monitoring.metrics import TrafficCollector, scrape
from powerbus.monitoring.rules import DEFAULT_RULES

ECHO = "powerbus.echo.v1.Echo"


def call(code: str = "OK", *, node: str = "echo-1", **fields: object) -> CallRecord:
    return CallRecord(ECHO, "Echo", node, "demo", code, 0.002, 10, 20, **fields)  # type: ignore[arg-type]


def metrics(recorder: TrafficRecorder) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(TrafficCollector(recorder, lambda: ([], []), lambda: []))
    values: dict[str, float] = {}
    for line in scrape(registry).decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def total(values: dict[str, float], prefix: str, **labels: str) -> float:
    return sum(
        v
        for k, v in values.items()
        if k.split("{")[0] == prefix and all(f'{n}="{x}"' in k for n, x in labels.items())
    )


def test_a_node_answering_unavailable_itself_is_not_unreachable():
    recorder = TrafficRecorder()
    for _ in range(5):
        recorder.call_finished(call("UNAVAILABLE", reached=True))
    assert recorder.unreachable() == {}


def test_requests_total_counts_calls_and_attempts_apart():
    recorder = TrafficRecorder()
    # One call retried after an UNAVAILABLE attempt on echo-2, then OK on echo-1.
    recorder.call_finished(call("UNAVAILABLE", node="echo-2", last=False))
    recorder.call_finished(call("OK"))
    recorder.call_finished(call("OK"))
    values = metrics(recorder)
    assert total(values, "powerbus_requests_total") == 2
    assert total(values, "powerbus_request_errors_total") == 0
    assert total(values, "powerbus_attempts_total") == 3
    assert total(values, "powerbus_attempts_total", code="UNAVAILABLE", node="echo-2") == 1
    assert total(values, "powerbus_retries_total", service=ECHO) == 1


def test_a_corba_call_is_counted_once():
    recorder = TrafficRecorder()
    recorder.call_finished(call("OK"))  # the gateway's call, routed
    recorder.call_finished(call("OK", origin=CallOrigin.IIOP))  # the gateway's report of it
    values = metrics(recorder)
    assert total(values, "powerbus_requests_total") == 1
    assert total(values, "powerbus_iiop_requests_total") == 1


def test_built_in_rules_hold_before_raising():
    holds = {r.name: r.hold for r in DEFAULT_RULES}
    assert holds["node-down"] >= timedelta(seconds=5)
    assert holds["service-without-healthy-node"] >= timedelta(seconds=5)
    assert holds["error-share"] >= timedelta(seconds=30)
    assert holds["p99-latency"] >= timedelta(seconds=30)
    book = AlertBook()
    (down,) = [r for r in DEFAULT_RULES if r.name == "node-down"]
    # A node unreachable for one second, three times: no alert.
    for start in (100.0, 200.0, 300.0):
        assert book.evaluate([Finding(down, "echo-2", "unreachable")], now=start) == []
        assert book.evaluate([Finding(down, "echo-2", "unreachable")], now=start + 1) == []
        assert book.evaluate([], now=start + 2) == []
    assert book.active() == [] and book.recent() == []


async def test_cleared_alerts_are_recent_after_a_restart(bus_server):
    from monitoring_support import get_json, quick

    from powerbus.monitoring import AlertKind, AlertRule

    rule = AlertRule(name="nothing-up", kind=AlertKind.NO_HEALTHY_NODE)
    first = await bus_server(monitoring=quick(rules=(rule,)))
    alert = first.monitoring.alerts
    alert.evaluate([Finding(rule, "powerbus.x.v1.X", "no node is up")], now=1000.0)
    alert.evaluate([], now=1001.0)
    await first.stop()  # flushes the alert log
    second = await bus_server(monitoring=quick(rules=(rule,)))
    recent = (await get_json(second, "/api/alerts"))["recent"]
    assert [(a["rule"], a["subject"], a["active"]) for a in recent] == [
        ("nothing-up", "powerbus.x.v1.X", False)
    ]


def test_the_node_down_message_is_true_to_the_lease():
    from powerbus.monitoring.findings import findings
    from powerbus.monitoring.health import HealthLog, OperatorHealth
    from powerbus.monitoring.topology import Topology, TopologyNode

    def message(silent: float) -> str:
        node = TopologyNode(
            node_id="echo-2",
            kind="echo",
            health=OperatorHealth.DOWN,
            services=(),
            silent_s=silent,
            lease_ttl_s=10.0,
        )
        graph = Topology(nodes=[node], services=[], declared=[], observed=[])
        rules = [r for r in DEFAULT_RULES if r.name == "node-down"]
        (found,) = findings(rules, topology=graph, rates=lambda s: {}, health=HealthLog())
        return found.message

    assert "lapsed" not in message(1.0) and "before its 10 s lease ran out" in message(1.0)
    assert message(12.0) == "echo-2 (echo) is down: no heartbeat for 12 s, so its 10 s lease lapsed"


async def test_balancer_state_is_on_metrics(bus_server, runners):
    from monitoring_support import get_text

    from powerbus.nodes.echo import EchoNode

    bus = await bus_server()
    await runners(EchoNode(), bus=bus, node_id="echo-1")
    text = await get_text(bus, "/metrics")
    for line in (
        f'powerbus_balancer_panic{{service="{ECHO}"}} 0.0',
        f'powerbus_service_breaker_state{{service="{ECHO}",state="closed"}} 1.0',
        f'powerbus_node_in_rotation{{node="echo-1",service="{ECHO}"}} 1.0',
        f'powerbus_node_ejected{{node="echo-1",service="{ECHO}"}} 0.0',
        f'powerbus_outlier_ejections_enforced_total{{service="{ECHO}"}} 0.0',
    ):
        assert line in text, line


async def test_a_node_answering_unavailable_stays_up_in_the_topology(bus_server, runners):
    import contextlib

    import grpc
    from monitoring_support import get_json, quick

    from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
    from powerbus.nodes.echo import EchoNode

    bus = await bus_server(monitoring=quick())
    await runners(EchoNode(), bus=bus, node_id="echo-1")
    async with grpc.aio.insecure_channel(str(bus.grpc_address)) as channel:
        stub = echo_pb2_grpc.EchoStub(channel)
        for _ in range(5):
            with contextlib.suppress(grpc.aio.AioRpcError):
                await stub.Echo(echo_pb2.EchoRequest(fail_code=14), timeout=5)
    topology = await get_json(bus, "/api/topology")
    assert {n["node_id"]: n["health"] for n in topology["nodes"]} == {"echo-1": "up"}
    assert bus.monitoring.evaluate() == []
