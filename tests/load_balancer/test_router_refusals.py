"""The router's refusals say which mechanism refused and name the service and the node.

A bus and one echo node in this process; the node is made to fail with UNAVAILABLE (a
node failure) until its breaker opens."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from powerbus.bus.config import BusConfig
from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.server import BusServer
from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.nodes.echo import EchoNode
from powerbus.nodes.sdk import NodeConfig, NodeRunner

LOOPBACK = HostPort("127.0.0.1", 0)
ECHO = "powerbus.echo.v1.Echo"
FAILING = echo_pb2.EchoRequest(message="down", fail_code=grpc.StatusCode.UNAVAILABLE.value[0])


@pytest.fixture
async def bus_and_stub(tmp_path) -> AsyncIterator[tuple[BusServer, echo_pb2_grpc.EchoStub]]:
    config = BusConfig(grpc=LOOPBACK, http=LOOPBACK, db=f"sqlite:///{tmp_path / 'bus.db'}")
    async with BusServer(config=config) as bus:
        node_config = NodeConfig(id="echo-1", bus=bus.grpc_address, listen=LOOPBACK)
        async with NodeRunner(EchoNode(), config=node_config) as runner:
            await runner.wait_registered()
            async with grpc.aio.insecure_channel(str(bus.grpc_address)) as channel:
                yield bus, echo_pb2_grpc.EchoStub(channel)


async def _fail(stub: echo_pb2_grpc.EchoStub, times: int) -> None:
    for _ in range(times):
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.Echo(FAILING, timeout=5)


async def test_an_open_node_breaker_is_named(bus_and_stub):
    bus, stub = bus_and_stub
    await bus._policy_watcher.set(  # type: ignore[union-attr]
        ECHO,
        set_={"breaker.window": "4", "breaker.min_calls": "4", "breaker.open": "30s",
              "outlier.enabled": "false", "service_breaker.enabled": "false"},
    )  # fmt: skip
    await _fail(stub, 4)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.Echo(echo_pb2.EchoRequest(message="ok"), timeout=5)
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    assert refused.value.details().startswith(
        "circuit breaker open for service powerbus.echo.v1.Echo on node echo-1 (probing in"
    )


async def test_an_open_service_breaker_is_named(bus_and_stub):
    bus, stub = bus_and_stub
    await bus._policy_watcher.set(  # type: ignore[union-attr]
        ECHO,
        set_={"service_breaker.window": "4", "service_breaker.min_calls": "4",
              "service_breaker.failure_ratio": "1", "service_breaker.open": "30s",
              "breaker.enabled": "false", "outlier.enabled": "false"},
    )  # fmt: skip
    await _fail(stub, 4)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.Echo(echo_pb2.EchoRequest(message="ok"), timeout=5)
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    assert refused.value.details().startswith(
        "circuit breaker open for service powerbus.echo.v1.Echo: 100% of recent calls failed"
    )


async def test_a_failure_that_was_not_retried_says_why(bus_and_stub):
    _bus, stub = bus_and_stub
    # Echo is idempotent, but there is no other node to try.
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stub.Echo(FAILING, timeout=5)
    assert failure.value.details() == "down [powerbus: not retried: no node other than echo-1]"
