"""Every routed call is described to the call observer: who called what, where, how it went.

The bus and an echo node run in this process (real sockets on loopback) so the test can
read what its observer was told.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from powerbus.bus.config import BusConfig
from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.server import BusServer
from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.monitoring import CallRecord
from powerbus.nodes.echo import EchoNode
from powerbus.nodes.sdk import NodeConfig, NodeRunner
from powerbus.nodes.testing import eventually

LOOPBACK = HostPort("127.0.0.1", 0)


@dataclass
class Recorder:
    started: list[tuple[str, str, str]] = field(default_factory=list)
    finished: list[CallRecord] = field(default_factory=list)

    def call_started(self, service: str, method: str, node_id: str) -> None:
        self.started.append((service, method, node_id))

    def call_finished(self, record: CallRecord) -> None:
        self.finished.append(record)


@pytest.fixture
async def recorder(tmp_path) -> AsyncIterator[tuple[Recorder, echo_pb2_grpc.EchoStub]]:
    recorder = Recorder()
    config = BusConfig(grpc=LOOPBACK, http=LOOPBACK, db=f"sqlite:///{tmp_path / 'bus.db'}")
    async with BusServer(config=config, observer=recorder) as bus:
        node_config = NodeConfig(id="echo-1", bus=bus.grpc_address, listen=LOOPBACK)
        async with NodeRunner(EchoNode(), config=node_config) as runner:
            await runner.wait_registered()
            async with grpc.aio.insecure_channel(str(bus.grpc_address)) as channel:
                yield recorder, echo_pb2_grpc.EchoStub(channel)


async def test_a_unary_call_is_recorded_with_its_sizes(recorder):
    seen, stub = recorder
    request = echo_pb2.EchoRequest(message="x" * 100)
    await stub.Echo(request, timeout=5, metadata=(("x-powerbus-caller", "billing-1"),))
    (record,) = seen.finished
    assert (record.service, record.method, record.node_id) == (
        "powerbus.echo.v1.Echo",
        "Echo",
        "echo-1",
    )
    assert (record.caller, record.code) == ("billing-1", "OK")
    assert record.bytes_in == request.ByteSize() and record.bytes_out > 100
    assert 0 < record.latency_s < 5
    assert seen.started == [("powerbus.echo.v1.Echo", "Echo", "echo-1")]


async def test_a_failed_call_is_recorded_with_its_code(recorder):
    seen, stub = recorder
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.Echo(
            echo_pb2.EchoRequest(fail_code=grpc.StatusCode.NOT_FOUND.value[0]), timeout=5
        )
    assert [r.code for r in seen.finished] == ["NOT_FOUND"]


async def test_a_call_past_its_deadline_is_recorded(recorder):
    seen, stub = recorder
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.Echo(echo_pb2.EchoRequest(delay=Duration(seconds=2)), timeout=0.3)
    # The caller gives up on its own clock; the bus records the call when it ends there.
    await eventually(lambda: seen.finished, timeout=5, what="the expired call's record")
    assert [r.code for r in seen.finished] in (["DEADLINE_EXCEEDED"], ["CANCELLED"])


async def test_streams_count_every_message(recorder):
    seen, stub = recorder
    replies = [
        r async for r in stub.Expand(echo_pb2.ExpandRequest(message="m", count=4), timeout=5)
    ]
    requests = [echo_pb2.EchoRequest(message=str(i)) for i in range(3)]
    await stub.Collect(iter(requests), timeout=5)
    expand, collect = seen.finished
    assert expand.bytes_out == sum(r.ByteSize() for r in replies)
    assert collect.bytes_in == sum(r.ByteSize() for r in requests)


async def test_a_caller_that_does_not_say_is_its_peer_host(recorder):
    seen, stub = recorder
    await stub.Echo(echo_pb2.EchoRequest(), timeout=5)
    assert seen.finished[0].caller == "peer:127.0.0.1"
