"""One bad client cannot hurt the others: garbage bytes and made-up method paths.

Real processes: a bus and two echo nodes on loopback; the bad and the good client run in
the test. Undecodable requests are the caller's INVALID_ARGUMENT, so they open no breaker
(neither the bus's nor a proxyless client's) while the legitimate caller keeps succeeding;
unknown method paths are refused without the bus caching anything per path.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from bad_client_support import (
    ECHO,
    ECHO_PATH,
    GARBAGE,
    Tally,
    balancer_nodes,
    rss_bytes,
    tally_calls,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc

from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.nodes.sdk.proxyless import ProxylessClient

pytestmark = pytest.mark.timeout(120)

BAD_CALLS = 200


@pytest.fixture
def nodes(bus, node_factory):
    return [node_factory("echo", bus=bus, node_id=f"echo-{i}") for i in (1, 2)]


async def _send_garbage(call, bad: Tally) -> None:
    # Ten at a time: a burst, as a broken or hostile client would send it.
    for start in range(0, BAD_CALLS, 10):
        results = await asyncio.gather(
            *(call(GARBAGE[i % len(GARBAGE)]) for i in range(start, start + 10)),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, grpc.aio.AioRpcError):
                bad.add(result.code().name)
            elif isinstance(result, BaseException):
                raise result
            else:
                bad.add("OK")


async def test_garbage_opens_no_breaker_through_the_router_nor_proxyless(bus, nodes):
    # One bus and two nodes for both paths: starting processes is what costs here.
    good, bad = Tally(), Tally()
    async with grpc.aio.insecure_channel(bus.grpc) as channel:
        stub = echo_pb2_grpc.EchoStub(channel)
        raw = channel.unary_unary(ECHO_PATH)  # no serializer: the bytes go out as they are

        async def legitimate() -> object:
            return await stub.Echo(echo_pb2.EchoRequest(message="ok"), timeout=5)

        await legitimate()
        stop = asyncio.Event()
        worker = asyncio.create_task(tally_calls(legitimate, good, stop, limit=5000))
        try:
            await _send_garbage(lambda body: raw(body, timeout=5), bad)
            await asyncio.sleep(0.5)  # calls after the burst count too
        finally:
            stop.set()
            await worker
    assert bad.codes == {"INVALID_ARGUMENT": BAD_CALLS}
    assert good.total >= 50 and good.success >= 0.99, good.codes
    view = balancer_nodes(bus.http, ECHO)
    assert {n: (v["breaker"], v["in_rotation"]) for n, v in view.items()} == {
        "echo-1": ("closed", True),
        "echo-2": ("closed", True),
    }
    assert all(not v["ejection_reason"] for v in view.values())

    good, bad = Tally(), Tally()
    async with ProxylessClient(bus=bus.grpc, caller="bad-1", report_interval=5) as client:
        await client.wait_for_nodes(ECHO, count=2, timeout=15)
        proxyless = client.stub(echo_pb2_grpc.EchoStub)
        raw = client.stub(lambda channel: channel.unary_unary(ECHO_PATH))

        async def direct() -> object:
            return await proxyless.Echo(echo_pb2.EchoRequest(message="ok"), timeout=5)

        stop = asyncio.Event()
        worker = asyncio.create_task(tally_calls(direct, good, stop, limit=5000))
        try:
            await _send_garbage(lambda body: raw(body, timeout=5), bad)
            await asyncio.sleep(0.5)
        finally:
            stop.set()
            await worker
        snapshot = client.balancer(ECHO).snapshot()
    assert bad.codes == {"INVALID_ARGUMENT": BAD_CALLS}
    assert good.total >= 50 and good.success >= 0.99, good.codes
    assert snapshot.service_breaker == "closed"
    assert {n.node_id: (n.breaker, n.in_rotation) for n in snapshot.nodes} == {
        "echo-1": ("closed", True),
        "echo-2": ("closed", True),
    }


async def test_unknown_method_paths_leave_the_bus_memory_flat(bus):
    paths = 20_000
    async with grpc.aio.insecure_channel(bus.grpc) as channel:

        async def unknown(i: int) -> str:
            try:
                await channel.unary_unary(f"/made.up.v{i}.Svc/M{i}")(b"", timeout=5)
            except grpc.aio.AioRpcError as error:
                return error.code().name
            return "OK"

        async def burst(first: int, count: int) -> dict[str, int]:
            codes: dict[str, int] = {}
            for start in range(first, first + count, 200):
                batch = range(start, start + 200)
                for code in await asyncio.gather(*(unknown(i) for i in batch)):
                    codes[code] = codes.get(code, 0) + 1
            return codes

        # Warm-up: the bus's allocator and grpc's own tables reach their working size.
        await burst(0, 2_000)
        before = rss_bytes(bus.pid)
        codes = await burst(2_000, paths)
        after = rss_bytes(bus.pid)
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert codes == {"UNIMPLEMENTED": paths}
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    # Cached per path, 20,000 refusal handlers took about 19 MiB (issue 13: 94 MiB/100,000);
    # without the cache the bus's RSS still moves a few MiB with its allocator and its own
    # records (6.5 MiB once in CI), so the line is drawn at half the leak.
    assert after - before < 19 * 1024 * 1024 // 2, (before, after)
