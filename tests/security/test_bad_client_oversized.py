"""One bad client cannot hurt the others: request bodies over ``max_request_bytes``.

Real processes: a bus (limit 1 MiB here, to keep the test light) and an echo node. A
bad client sends concurrent 24 MiB requests; each is refused with RESOURCE_EXHAUSTED
naming its size and the limit, the bus's resident memory does not grow by the bodies it
was sent, and a legitimate caller keeps succeeding meanwhile.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from bad_client_support import ECHO_PATH, Tally, peak_rss_bytes, rss_bytes, tally_calls

from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc

pytestmark = pytest.mark.timeout(120)

LIMIT = 1024 * 1024
BODY = 24 * 1024 * 1024
SENDERS = 8


async def test_oversized_bodies_are_refused_unbuffered(bus_factory, node_factory):
    bus = bus_factory(max_request_bytes=str(LIMIT))
    node_factory("echo", bus=bus, node_id="echo-1")
    good = Tally()
    body = bytes(BODY)  # one buffer, sent by every bad call
    async with (
        grpc.aio.insecure_channel(bus.grpc) as good_channel,
        grpc.aio.insecure_channel(
            bus.grpc, options=(("grpc.max_send_message_length", 2 * BODY),)
        ) as bad_channel,
    ):
        stub = echo_pb2_grpc.EchoStub(good_channel)

        async def legitimate() -> object:
            return await stub.Echo(echo_pb2.EchoRequest(message="ok"), timeout=5)

        await legitimate()
        before = rss_bytes(bus.pid)
        raw = bad_channel.unary_unary(ECHO_PATH)
        stop = asyncio.Event()
        worker = asyncio.create_task(tally_calls(legitimate, good, stop, limit=5000))
        try:
            results = await asyncio.gather(
                *(raw(body, timeout=20) for _ in range(SENDERS)), return_exceptions=True
            )
        finally:
            stop.set()
            await worker
        peak = peak_rss_bytes(bus.pid)
    errors = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(errors) == SENDERS, results
    assert {e.code() for e in errors} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert f"{BODY} vs. {LIMIT}" in (errors[0].details() or "")
    assert good.success >= 0.99, good.codes
    # Buffered, the bodies would have taken SENDERS * 24 MiB = 192 MiB.
    assert peak - before < 64 * 1024 * 1024, (before, peak)


async def test_large_requests_at_once_are_bounded_by_bytes_in_flight(bus_factory, node_factory):
    """Each request under the size limit, but many at once: past ``max_bytes_in_flight``
    the bus refuses new ones at once instead of holding them all."""
    bus = bus_factory(max_request_bytes=str(LIMIT), env={"POWERBUS_MAX_BYTES_IN_FLIGHT": "3145728"})
    node_factory("echo", bus=bus, node_id="echo-1")
    big = echo_pb2.EchoRequest(payload=bytes(LIMIT - 1024))
    big.delay.FromMilliseconds(1500)  # held by the bus while the node waits
    async with grpc.aio.insecure_channel(bus.grpc) as channel:
        stub = echo_pb2_grpc.EchoStub(channel)
        results = await asyncio.gather(
            *(stub.Echo(big, timeout=20) for _ in range(8)), return_exceptions=True
        )
        small = await stub.Echo(echo_pb2.EchoRequest(message="ok"), timeout=5)
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(results) - len(refused) == 3  # 3 of about 1 MiB fit in 3 MiB
    assert {e.code() for e in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert "would pass max_bytes_in_flight (3145728)" in (refused[0].details() or "")
    assert small.message == "ok"  # the budget came back
