"""Unary calls to a node as ordinary gRPC calls on its channel, bytes in and out."""

from __future__ import annotations

from typing import Any

import grpc

from powerbus.bus.transport.grpc_status import from_grpc, never_reached
from powerbus.bus.transport.reply import Metadata, Reply
from powerbus.load_balancer.status import StatusCode

__all__ = ["GrpcTransport"]


class GrpcTransport:
    """A :class:`~powerbus.bus.transport.reply.Transport` over one gRPC channel.

    Multi-callables carry no serializers, so request and reply bytes pass through
    untouched; they are made once per method.
    """

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel
        self._callables: dict[str, Any] = {}

    async def call(
        self, path: str, metadata: Metadata, payload: bytes, timeout: float | None
    ) -> Reply:
        method = self._callables.get(path)
        if method is None:
            method = self._callables[path] = self.channel.unary_unary(path)
        call = method(payload, timeout=timeout, metadata=metadata)
        try:
            reply: bytes = await call
            initial = await call.initial_metadata()
            trailing = await call.trailing_metadata()
            return Reply(
                StatusCode.OK,
                reply,
                initial=tuple(initial or ()),
                trailing=tuple(trailing or ()),
            )
        except grpc.aio.AioRpcError as error:
            return Reply(
                from_grpc(error.code()),
                details=error.details() or "",
                initial=tuple(error.initial_metadata() or ()),
                trailing=tuple(error.trailing_metadata() or ()),
                ran=not never_reached(error),
            )
        finally:
            call.cancel()  # no-op once done; ends the node's call if ours was cancelled
