"""Server interceptors: what every handler needs and none should write itself.

- :class:`LoadInterceptor` counts calls in flight, calls and failed calls for heartbeats;
- :class:`ErrorInterceptor` sends a powerbus error raised by a handler as its gRPC status,
  the one place node handlers' errors meet the wire.

Both wrap the handler's behaviour in an async context manager around the call, for each of
the four call shapes.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from powerbus.bus.kernel.errors import PowerbusError
from powerbus.bus.router.link_frames import LINK_PREFIX
from powerbus.nodes.sdk.load import LoadCounter

__all__ = ["ErrorInterceptor", "LoadInterceptor"]

Around = Callable[
    [grpc.aio.ServicerContext[Any, Any]], contextlib.AbstractAsyncContextManager[None]
]
Q = TypeVar("Q")
R = TypeVar("R")

# The bus probes health often; counting probes would drown the node's real traffic.
_HEALTH_PREFIX = "/grpc.health.v1.Health/"
_OK_CODES = (None, grpc.StatusCode.OK)
_BEHAVIORS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


class LoadInterceptor(grpc.aio.ServerInterceptor):
    """Feeds a :class:`LoadCounter` from every call but health checks.

    A call failed when its handler raised (``context.abort`` included) or set a non-OK code.
    """

    def __init__(self, counter: LoadCounter) -> None:
        self._counter = counter

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Q, R] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Q, R] | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if method.startswith(_HEALTH_PREFIX) or method.startswith(LINK_PREFIX):
            return handler  # calls on the node link are counted one by one, inside it
        return _wrapped(handler, self._counting)

    @contextlib.asynccontextmanager
    async def _counting(self, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
        self._counter.begin()
        failed = True
        try:
            yield
            failed = context.code() not in _OK_CODES
        finally:
            self._counter.end(failed=failed)


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Aborts a call whose handler raised a :class:`PowerbusError` with that error's status
    and message, so handlers raise ``InvalidArgument("field", "problem")`` and move on."""

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Q, R] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Q, R] | None:
        return _wrapped(await continuation(handler_call_details), _mapping_errors)


@contextlib.asynccontextmanager
async def _mapping_errors(context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
    try:
        yield
    except PowerbusError as exc:
        await context.abort(exc.status, exc.message)


def _wrapped(
    handler: grpc.RpcMethodHandler[Q, R] | None, around: Around
) -> grpc.RpcMethodHandler[Q, R] | None:
    if handler is None:  # unknown method: grpc answers UNIMPLEMENTED itself
        return None
    for kind in _BEHAVIORS:
        behavior = getattr(handler, kind, None)
        if behavior is not None:
            # grpc's handlers are namedtuples; replacing one field keeps the (de)serializers.
            replaced: grpc.RpcMethodHandler[Q, R] = handler._replace(  # type: ignore[attr-defined]
                **{kind: _wrap(behavior, around)}
            )
            return replaced
    return handler


def _wrap(behavior: Callable[..., Any], around: Around) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(behavior):

        async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            async with around(context):
                async for response in behavior(request, context):
                    yield response

        return stream

    async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        async with around(context):
            result = behavior(request, context)
            if inspect.isawaitable(result):
                result = await result
            return result

    return call
