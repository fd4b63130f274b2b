"""The node-relationship graph and impact analysis: cycles, single points of failure, a
standby pair, and callers hit transitively — on a hand-made graph and on a real bus."""

from __future__ import annotations

import asyncio

import grpc
from monitoring_support import ECHO, get_json, get_text, quick
from typer.testing import CliRunner

from powerbus.billing.v1 import billing_pb2_grpc
from powerbus.bus.cli import app
from powerbus.crm.v1 import crm_pb2_grpc
from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.metering.v1 import metering_pb2_grpc
from powerbus.monitoring.health import OperatorHealth
from powerbus.monitoring.impact import impact_of
from powerbus.monitoring.topology import (
    DeclaredEdge,
    ObservedEdge,
    ServiceView,
    Topology,
    TopologyNode,
)
from powerbus.nodes.echo import EchoNode
from powerbus.nodes.sdk import BusClient, Node
from powerbus.nodes.sdk.config import NodePriority
from powerbus.payment.v1 import payment_pb2_grpc

BILLING = "powerbus.billing.v1.Billing"
METERING = "powerbus.metering.v1.Metering"
CUSTOMERS = "powerbus.crm.v1.Customers"
PAYMENTS = "powerbus.payment.v1.Payments"
UP = OperatorHealth.UP


def node(node_id: str, *services: str, priority: str = "primary") -> TopologyNode:
    return TopologyNode(
        node_id=node_id, kind=node_id.split("-")[0], health=UP, services=services, priority=priority
    )


def graph() -> Topology:
    """billing ⇄ payment form a cycle; metering is a single point of failure; crm is a
    primary/standby pair; echo has two nodes; a browser outside the bus calls billing."""
    nodes = [
        node("billing-1", BILLING),
        node("payment-1", PAYMENTS),
        node("metering-1", METERING),
        node("crm-1", CUSTOMERS),
        node("crm-2", CUSTOMERS, priority="standby"),
        node("echo-1", ECHO),
        node("echo-2", ECHO),
        node("portal-1"),
    ]
    services = [
        ServiceView(name=s, nodes=ids, healthy=ids)
        for s, ids in (
            (BILLING, ("billing-1",)),
            (PAYMENTS, ("payment-1",)),
            (METERING, ("metering-1",)),
            (CUSTOMERS, ("crm-1", "crm-2")),
            (ECHO, ("echo-1", "echo-2")),
        )
    ]
    declared = [
        DeclaredEdge(caller="billing-1", service=METERING),
        DeclaredEdge(caller="billing-1", service=CUSTOMERS),
        DeclaredEdge(caller="billing-1", service=PAYMENTS),
        DeclaredEdge(caller="payment-1", service=BILLING),
        DeclaredEdge(caller="metering-1", service=ECHO),
        DeclaredEdge(caller="portal-1", service=CUSTOMERS, required=False),
    ]
    observed = [ObservedEdge(caller="peer:10.1.1.1", service=BILLING, node="billing-1", qps=2.0)]
    return Topology(nodes=nodes, services=services, declared=declared, observed=observed)


def test_cycles_and_single_points_of_failure_are_found():
    g = graph()
    assert g.cycles() == [[BILLING, PAYMENTS, BILLING]]
    # crm (a standby pair) and echo have two healthy nodes; everything else has one.
    assert g.single_points_of_failure() == [BILLING, METERING, PAYMENTS]
    assert "digraph powerbus" in g.to_dot() and '"caller:peer:10.1.1.1"' in g.to_dot()


def test_a_single_point_of_failure_takes_down_its_dependants_transitively():
    result = impact_of(graph(), "metering-1")
    effects = {s.service: (s.effect, s.depth) for s in result.services}
    assert effects == {METERING: ("dark", 0), BILLING: ("dark", 1), PAYMENTS: ("dark", 2)}
    assert result.impaired_nodes == {
        "billing-1": f"needs {METERING}",
        "payment-1": f"needs {BILLING}",
    }
    hit = {c.caller: (c.effect, c.depth) for c in result.callers}
    assert hit == {
        "billing-1": ("outage", 1),
        "payment-1": ("outage", 2),
        "peer:10.1.1.1": ("outage", 2),
    }


def test_losing_the_primary_of_a_standby_pair_fails_over():
    result = impact_of(graph(), "crm-1")
    ((service, effect, after, lost),) = [
        (s.service, s.effect, s.healthy_after, s.capacity_lost) for s in result.services
    ]
    assert (service, effect, after, lost) == (CUSTOMERS, "failover", 1, 0.5)
    hit = {c.caller: (c.effect, c.required) for c in result.callers}
    assert hit == {"billing-1": ("degraded", True), "portal-1": ("degraded", False)}
    assert result.impaired_nodes == {}


def test_one_of_two_nodes_only_costs_capacity():
    result = impact_of(graph(), "echo-2")
    assert [(s.service, s.effect) for s in result.services] == [(ECHO, "degraded")]
    assert [c.caller for c in result.callers] == ["metering-1"]


def test_the_cycle_does_not_loop_forever():
    result = impact_of(graph(), "payment-1")
    assert {s.service: s.effect for s in result.services} == {PAYMENTS: "dark", BILLING: "dark"}
    assert set(result.impaired_nodes) == {"billing-1"}


def test_an_unknown_node_breaks_nothing():
    result = impact_of(graph(), "nope")
    assert (result.known, result.services, result.callers) == (False, [], [])


# The same shape on a real bus: nodes registered with their declared dependencies.


class Billing(Node, billing_pb2_grpc.BillingServicer):
    kind = "billing"
    metering = BusClient(metering_pb2_grpc.MeteringStub)
    customers = BusClient(crm_pb2_grpc.CustomersStub)
    payments = BusClient(payment_pb2_grpc.PaymentsStub)


class Payment(Node, payment_pb2_grpc.PaymentsServicer):
    kind = "payment"
    billing = BusClient(billing_pb2_grpc.BillingStub)


class Metering(Node, metering_pb2_grpc.MeteringServicer):
    kind = "metering"
    echo = BusClient(echo_pb2_grpc.EchoStub)


class Crm(Node, crm_pb2_grpc.CustomersServicer):
    kind = "crm"


async def test_impact_on_a_real_bus_over_http_and_the_cli(bus_server, runners):
    bus = await bus_server(monitoring=quick())
    await runners(Billing(), bus=bus, node_id="billing-1")
    await runners(Payment(), bus=bus, node_id="payment-1")
    await runners(Metering(), bus=bus, node_id="metering-1")
    await runners(Crm(), bus=bus, node_id="crm-1")
    await runners(Crm(), bus=bus, node_id="crm-2", priority=NodePriority.STANDBY)
    await runners(EchoNode(), bus=bus, node_id="echo-1")
    async with grpc.aio.insecure_channel(str(bus.grpc_address)) as channel:
        stub = echo_pb2_grpc.EchoStub(channel)
        metadata = (("x-powerbus-caller", "metering-1"),)
        for _ in range(3):
            await stub.Echo(echo_pb2.EchoRequest(message="m"), timeout=5, metadata=metadata)

    topology = await get_json(bus, "/api/topology")
    assert topology["cycles"] == [[BILLING, PAYMENTS, BILLING]]
    assert set(topology["single_points_of_failure"]) == {BILLING, METERING, PAYMENTS, ECHO}
    assert [
        (e["caller"], e["service"], e["node"], e["total"]) for e in topology["observed_edges"]
    ] == [("metering-1", ECHO, "echo-1", 3)]
    dot = await get_text(bus, "/api/topology?format=dot")
    assert '"node:metering-1" -> "service:powerbus.echo.v1.Echo"' in dot

    impact = await get_json(bus, "/api/impact", node="echo-1")
    assert impact["dark_services"] == [ECHO, METERING, BILLING, PAYMENTS]
    assert {n["node"] for n in impact["impaired_nodes"]} == {"metering-1", "billing-1", "payment-1"}
    standby = await get_json(bus, "/api/impact", node="crm-1")
    assert [(s["service"], s["effect"]) for s in standby["services"]] == [(CUSTOMERS, "failover")]

    cli = CliRunner()
    http = str(bus.http_address)
    result = await asyncio.to_thread(
        cli.invoke, app, ["topology", "--http", http, "--impact", "metering-1"]
    )
    assert result.exit_code == 0, result.output
    assert "dark" in result.output and BILLING in result.output and "payment-1" in result.output
    missing = await asyncio.to_thread(
        cli.invoke, app, ["topology", "--http", http, "--impact", "x"]
    )
    assert missing.exit_code == 1 and "no node 'x' is known" in missing.output
    tree = await asyncio.to_thread(cli.invoke, app, ["topology", "--http", http])
    assert tree.exit_code == 0 and "crm-2" in tree.output and "dependency cycles" in tree.output
