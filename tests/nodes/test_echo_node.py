"""The echo node, served in-process and called over a real gRPC channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.nodes.echo import FAILED_KEY
from powerbus.nodes.testing import eventually


def request(message: str, **fields: object) -> echo_pb2.EchoRequest:
    return echo_pb2.EchoRequest(message=message, **fields)  # type: ignore[arg-type]


def seconds(value: float) -> Duration:
    duration = Duration()
    duration.FromTimedelta(timedelta(seconds=value))
    return duration


async def requests(*messages: str) -> AsyncIterator[echo_pb2.EchoRequest]:
    for message in messages:
        yield request(message, payload=message.encode())


async def test_unary_echo_names_the_node_and_returns_the_payload(echo):
    reply = await echo.Echo(request("你好", payload=b"\x00\x01"))
    assert (reply.message, reply.node_id, reply.payload) == ("你好", "echo-1", b"\x00\x01")


async def test_server_streaming_replies_count_times_in_order(echo):
    replies = [r async for r in echo.Expand(echo_pb2.ExpandRequest(message="m", count=4))]
    assert [(r.index, r.message, r.node_id) for r in replies] == [
        (i, "m", "echo-1") for i in range(4)
    ]


async def test_server_streaming_paces_replies_by_interval(echo):
    loop = asyncio.get_running_loop()
    started = loop.time()
    call = echo.Expand(echo_pb2.ExpandRequest(message="m", count=3, interval=seconds(0.2)))
    replies = [r async for r in call]
    assert len(replies) == 3
    assert loop.time() - started >= 0.4


async def test_negative_count_is_an_invalid_argument_naming_the_field(echo):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in echo.Expand(echo_pb2.ExpandRequest(message="m", count=-1)):
            pass
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("count:")


async def test_client_streaming_joins_messages_and_payloads(echo):
    reply = await echo.Collect(requests("a", "b", "c"))
    assert (reply.message, reply.payload, reply.node_id) == ("a b c", b"abc", "echo-1")


async def test_bidi_streaming_replies_to_each_message_as_it_arrives(echo):
    call = echo.Chat()
    seen = []
    for index, message in enumerate(["x", "y", "z"]):
        await call.write(request(message))
        reply = await call.read()  # answered before the next message is sent
        seen.append((reply.index, reply.message))
        assert reply.index == index
    await call.done_writing()
    assert await call.read() is grpc.aio.EOF
    assert seen == [(0, "x"), (1, "y"), (2, "z")]


@pytest.mark.parametrize("code", [grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNAVAILABLE])
async def test_fail_code_fails_with_details_and_trailing_metadata(echo, code):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await echo.Echo(request("out of paper", fail_code=code.value[0]))
    error = caught.value
    assert (error.code(), error.details()) == (code, "out of paper")
    assert dict(error.trailing_metadata())[FAILED_KEY] == "echo-1"


async def test_fail_code_in_a_stream_fails_the_stream_at_that_message(echo):
    async def messages() -> AsyncIterator[echo_pb2.EchoRequest]:
        yield request("fine")
        yield request("broken", fail_code=grpc.StatusCode.DATA_LOSS.value[0])

    call = echo.Chat(messages())
    first = await call.read()
    assert first.message == "fine"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.read()
    assert caught.value.code() is grpc.StatusCode.DATA_LOSS


async def test_an_unknown_fail_code_is_an_invalid_argument(echo):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await echo.Echo(request("x", fail_code=99))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("fail_code:")


async def test_x_metadata_is_echoed_and_other_metadata_is_not(echo):
    metadata = (("x-powerbus-key", "meter-42"), ("x-trace", "abc"), ("other", "no"))
    reply = await echo.Echo(request("m"), metadata=metadata)
    assert reply.metadata["x-powerbus-key"] == "meter-42"
    assert reply.metadata["x-trace"] == "abc"
    assert "other" not in reply.metadata


async def test_deadline_remaining_reflects_the_callers_deadline(echo):
    reply = await echo.Echo(request("m"), timeout=3.0)
    remaining = reply.deadline_remaining.ToTimedelta().total_seconds()
    assert 2.0 < remaining <= 3.1


async def test_delay_holds_the_reply_and_a_short_deadline_cuts_it(echo):
    loop = asyncio.get_running_loop()
    started = loop.time()
    await echo.Echo(request("slow", delay=seconds(0.3)))
    assert loop.time() - started >= 0.3
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await echo.Echo(request("slower", delay=seconds(5)), timeout=0.2)
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED


async def test_record_counts_executions_per_request_id(echo):
    first = await echo.Record(echo_pb2.RecordRequest(request_id="r1"))
    second = await echo.Record(echo_pb2.RecordRequest(request_id="r1"))
    await echo.Record(echo_pb2.RecordRequest(request_id="r2"))
    counted = await echo.Executions(echo_pb2.ExecutionsRequest(request_id="r1"))
    assert (first.executions, second.executions) == (1, 2)
    assert (counted.node_id, counted.executions, counted.total) == ("echo-1", 2, 3)


async def test_without_a_deadline_the_node_sees_none(echo_runner):
    # A plain channel, without the SDK's default deadline.
    async with grpc.aio.insecure_channel(str(echo_runner.address)) as channel:
        reply = await echo_pb2_grpc.EchoStub(channel).Echo(request("m"))
    assert not reply.HasField("deadline_remaining")


async def test_health_reports_serving_for_the_node_and_its_service(echo_runner):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    async with grpc.aio.insecure_channel(str(echo_runner.address)) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "powerbus.echo.v1.Echo"):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_load_counts_calls_and_failures_but_not_health_checks(echo_runner, echo):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    await echo.Echo(request("ok"))
    with pytest.raises(grpc.aio.AioRpcError):
        await echo.Echo(request("bad", fail_code=grpc.StatusCode.INTERNAL.value[0]))
    _ = [r async for r in echo.Expand(echo_pb2.ExpandRequest(message="m", count=2))]
    async with grpc.aio.insecure_channel(str(echo_runner.address)) as channel:
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    load = echo_runner.load.snapshot()
    assert (load.requests_total, load.errors_total, load.in_flight) == (3, 1, 0)


async def test_in_flight_counts_calls_being_served(echo_runner, echo):
    slow = asyncio.ensure_future(echo.Echo(request("slow", delay=seconds(0.5))))
    await eventually(lambda: echo_runner.load.in_flight == 1, timeout=5, what="call in flight")
    await slow
    assert echo_runner.load.in_flight == 0
