"""Draining with several bus instances: a node leaves while a bus that has not yet seen it
leave keeps sending it calls. Those calls are refused before they run, so the bus retries
them on another node even though Record is not idempotent: none fails, none runs twice."""

from __future__ import annotations

import asyncio
import signal
import time
import urllib.request
import uuid

import grpc
import pytest
from chaos_tools import Load, balancer_nodes

from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.nodes.testing import eventually

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ECHO = "powerbus.echo.v1.Echo"


async def test_calls_from_a_bus_that_lags_are_retried_not_lost(bus_factory, node_factory, tmp_path):
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    quick = bus_factory(db=db)
    # This instance polls the registry only every 3 s: it keeps routing to a node that left.
    lagging = bus_factory(db=db, env={"POWERBUS_SWEEP_INTERVAL": "3s"})
    no_delay = {"POWERBUS_DEREGISTER_DELAY": "0s", "POWERBUS_DRAIN_GRACE": "1s"}
    leaving = node_factory("echo", bus=quick, node_id="echo-leaving", env=no_delay)
    staying = node_factory("echo", bus=quick, node_id="echo-staying", env=no_delay)
    outcomes: list[tuple[str, str, str]] = []

    async with grpc.aio.insecure_channel(lagging.grpc) as channel:
        stub = echo_pb2_grpc.EchoStub(channel)

        async def record() -> str:
            request_id = uuid.uuid4().hex
            try:
                reply = await stub.Record(echo_pb2.RecordRequest(request_id=request_id), timeout=5)
            except grpc.aio.AioRpcError as error:
                outcomes.append((request_id, "", error.code().name))
                raise
            outcomes.append((request_id, reply.node_id, "OK"))
            return reply.node_id

        await eventually(
            lambda: len(balancer_nodes(lagging.http, ECHO)) == 2,
            timeout=15,
            what="the lagging bus to see both nodes",
        )
        async with Load(record, workers=3) as load:
            start = await load.run_for(1.0)
            assert {r.node for r in load.since(start)} == {"echo-leaving", "echo-staying"}
            left_at = time.monotonic()
            # Stopping waits for the exit: in a thread, so the load goes on meanwhile.
            assert await asyncio.to_thread(leaving.stop, signal.SIGTERM) == 0
            await load.run_for(3.5)
        after = load.since(left_at)
        assert after
        assert [(r.code, r.details) for r in load.results if r.code != "OK"] == []
        assert {r.node for r in after[-10:]} == {"echo-staying"}
    # Not vacuous: the lagging bus did send calls to the node after it left, and they
    # were refused (UNAVAILABLE) before running.
    assert refused_attempts(lagging.http, "echo-leaving") > 0

    # Never twice: what echo-staying answered ran there once; what echo-leaving answered
    # did not also run on echo-staying.
    async with grpc.aio.insecure_channel(staying.address) as direct:
        stub = echo_pb2_grpc.EchoStub(direct)
        for request_id, node, _code in outcomes:
            reply = await stub.Executions(
                echo_pb2.ExecutionsRequest(request_id=request_id), timeout=5
            )
            assert reply.executions == (1 if node == "echo-staying" else 0), (request_id, node)


def refused_attempts(http_address: str, node: str) -> float:
    with urllib.request.urlopen(f"http://{http_address}/metrics", timeout=5) as response:
        lines = response.read().decode().splitlines()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in lines
        # Attempts, not calls: a refused attempt is retried on another node, and the call
        # it belongs to ends OK there.
        if line.startswith("powerbus_attempts_total")
        and f'node="{node}"' in line
        and 'code="UNAVAILABLE"' in line
    )
