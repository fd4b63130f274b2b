"""The built-in echo node: every Echo call shape, with knobs for delay and failure.

Every reply names the node that served it, echoes the caller's ``x-*`` metadata and says
how much of the caller's deadline was left, so tests can see routing, metadata and deadline
propagation end to end.
"""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration

from powerbus.bus.kernel.errors import InvalidArgument
from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.nodes.sdk.node import Node

__all__ = ["EchoNode"]

Context = grpc.aio.ServicerContext[Any, Any]

_STATUS_BY_CODE = {code.value[0]: code for code in grpc.StatusCode}
FAILED_KEY = "x-echo-failed"


class EchoNode(Node, echo_pb2_grpc.EchoServicer):
    """``powerbus node echo``: serves ``powerbus.echo.v1.Echo``.

    >>> [s.name for s in EchoNode.served_services()]
    ['powerbus.echo.v1.Echo']
    """

    kind = "echo"

    def __init__(self) -> None:
        self._executions: Counter[str] = Counter()

    async def Echo(self, request: echo_pb2.EchoRequest, context: Context) -> echo_pb2.EchoReply:
        reply = self._reply(context, message=request.message, payload=request.payload)
        await self._obey(request, context)
        return reply

    async def Expand(
        self, request: echo_pb2.ExpandRequest, context: Context
    ) -> AsyncIterator[echo_pb2.EchoReply]:
        if request.count < 0:
            raise InvalidArgument("count", f"must not be negative, got {request.count}")
        interval = request.interval.ToTimedelta().total_seconds()
        for index in range(request.count):
            if index and interval > 0:
                await asyncio.sleep(interval)
            yield self._reply(context, message=request.message, index=index)

    async def Collect(
        self, request_iterator: AsyncIterator[echo_pb2.EchoRequest], context: Context
    ) -> echo_pb2.EchoReply:
        reply = self._reply(context)
        messages: list[str] = []
        async for request in request_iterator:
            await self._obey(request, context)
            messages.append(request.message)
            reply.payload += request.payload
        reply.message = " ".join(messages)
        return reply

    async def Chat(
        self, request_iterator: AsyncIterator[echo_pb2.EchoRequest], context: Context
    ) -> AsyncIterator[echo_pb2.EchoReply]:
        index = 0
        async for request in request_iterator:
            await self._obey(request, context)
            yield self._reply(
                context, message=request.message, payload=request.payload, index=index
            )
            index += 1

    async def Record(
        self, request: echo_pb2.RecordRequest, context: Context
    ) -> echo_pb2.RecordReply:
        self._executions[request.request_id] += 1
        return echo_pb2.RecordReply(
            node_id=self.node_id, executions=self._executions[request.request_id]
        )

    async def Executions(
        self, request: echo_pb2.ExecutionsRequest, context: Context
    ) -> echo_pb2.ExecutionsReply:
        return echo_pb2.ExecutionsReply(
            node_id=self.node_id,
            executions=self._executions[request.request_id],
            total=sum(self._executions.values()),
        )

    def _reply(self, context: Context, **fields: Any) -> echo_pb2.EchoReply:
        reply = echo_pb2.EchoReply(node_id=self.node_id, metadata=_x_metadata(context), **fields)
        remaining = context.time_remaining()
        if remaining is not None:
            reply.deadline_remaining.CopyFrom(_duration(remaining))
        return reply

    async def _obey(self, request: echo_pb2.EchoRequest, context: Context) -> None:
        """Wait ``delay``, then fail with ``fail_code`` if the request asks to."""
        delay = request.delay.ToTimedelta().total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)
        if request.fail_code:
            code = _STATUS_BY_CODE.get(request.fail_code)
            if code is None or code is grpc.StatusCode.OK:
                raise InvalidArgument("fail_code", f"not a gRPC status code: {request.fail_code}")
            await context.abort(
                code, request.message, trailing_metadata=((FAILED_KEY, self.node_id),)
            )


def _x_metadata(context: Context) -> dict[str, str]:
    echoed: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if key.startswith("x-"):
            text = base64.b64encode(value).decode() if isinstance(value, bytes) else value
            echoed[key] = f"{echoed[key]},{text}" if key in echoed else text
    return echoed


def _duration(seconds: float) -> Duration:
    duration = Duration()
    duration.FromNanoseconds(max(0, round(seconds * 1e9)))
    return duration
