"""Fixtures of the billing node's end-to-end tests: a bus, the test-only CRM and metering
nodes (sim_nodes.py), billing nodes on a database of the test's own, and a client."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from powerbus.billing.v1 import billing_pb2, billing_pb2_grpc
from powerbus.bus.kernel.database import create_engine
from powerbus.bus.kernel.supervisor import BusHandle, NodeHandle, ProcessGroup

sys.path.insert(0, str(Path(__file__).resolve().parent))
from billing_support import CALL_TIMEOUT
from sim_nodes import start_sim


@dataclass
class Billing:
    """A billing set-up: the bus, the simulators, the node(s) and a stub through the bus."""

    bus: BusHandle
    db_url: str
    group: ProcessGroup
    start_node: Callable[..., NodeHandle]
    stub: billing_pb2_grpc.BillingStub
    node: NodeHandle

    def wait_run(
        self, run_id: str, *, timeout: float = 60.0, stub: Any = None
    ) -> billing_pb2.BillingRun:
        """Poll GetBillingRun until the run finished (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            run = (stub or self.stub).GetBillingRun(
                billing_pb2.GetBillingRunRequest(run_id=run_id), timeout=CALL_TIMEOUT
            )
            if run.state not in (
                billing_pb2.BILLING_RUN_STATE_PENDING,
                billing_pb2.BILLING_RUN_STATE_RUNNING,
            ):
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} not finished after {timeout}s: {run}")
            time.sleep(0.1)

    def scalar(self, sql: str, **params: object) -> Any:
        """One value from the billing database, read directly (the proofs count rows)."""
        engine = create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                return conn.execute(sa.text(sql), params).scalar_one()
        finally:
            engine.dispose()


@pytest.fixture
def billing_factory(
    bus_factory: Any, node_factory: Any, powerbus_processes: ProcessGroup, db_url: str
) -> Iterator[Callable[..., Billing]]:
    channels: list[grpc.Channel] = []

    def make(
        *,
        accounts: int = 50,
        crm: bool = True,
        delay: float = 0.0,
        closed_every: int = 0,
        tou_every: int = 0,
        events: bool = False,
        **node_options: object,
    ) -> Billing:
        bus = bus_factory(lease_ttl="2s")
        if events:  # the node publishes its events to this bus
            node_options = {**node_options, "events_in": bus.state["events_in"]}
        if crm:
            start_sim(
                powerbus_processes,
                "crm",
                bus=bus.grpc,
                node_id="sim-crm",
                accounts=accounts,
                closed_every=closed_every,
                tou_every=tou_every,
            )
        start_sim(powerbus_processes, "metering", bus=bus.grpc, node_id="sim-metering", delay=delay)

        def start_node(node_id: str = "billing-1", **extra: object) -> NodeHandle:
            return node_factory(
                "billing", bus=bus, node_id=node_id, db=db_url, **{**node_options, **extra}
            )

        node = start_node()
        channel = grpc.insecure_channel(bus.grpc)
        channels.append(channel)
        return Billing(
            bus, db_url, powerbus_processes, start_node, billing_pb2_grpc.BillingStub(channel), node
        )

    def direct(node: NodeHandle) -> billing_pb2_grpc.BillingStub:
        channel = grpc.insecure_channel(node.address)
        channels.append(channel)
        return billing_pb2_grpc.BillingStub(channel)

    make.direct = direct  # type: ignore[attr-defined]
    yield make
    for channel in channels:
        channel.close()
