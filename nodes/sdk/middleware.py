"""Per-call middleware: what every handler needs and none should write itself.

A :class:`Middleware` wraps each call in an async context manager, given the method path
and the call's context (``grpc.aio.ServicerContext`` on gRPC, the node link's own context
on the link; both offer the real metadata, the peer, the time left and the status code).
:func:`call_through` runs one unary call through a chain of middleware; the gRPC server
gets the same chain through :class:`MiddlewareInterceptor` (streams are wrapped whole),
so a middleware behaves the same whichever way a call arrived. The interceptor also
decodes requests itself (:mod:`powerbus.nodes.sdk.decoding`): bytes that are not the
method's request are ``INVALID_ARGUMENT``, the caller's fault, and never reach the chain.

Built in:

- :class:`LoadMiddleware` counts calls in flight, calls and failed calls for heartbeats;
- :class:`ErrorMiddleware` sends a powerbus error raised by a handler as its status, the
  one place node handlers' errors meet the wire;
- :class:`TracingMiddleware` (when tracing is on) runs each call in a server span that
  continues the caller's ``traceparent``, so the node's own calls through the bus join it.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import grpc

from powerbus.bus.kernel.errors import PowerbusError
from powerbus.bus.transport.grpc_status import abort_with, from_grpc
from powerbus.load_balancer import StatusCode
from powerbus.nodes.sdk.decoding import decode_request, decoded_requests
from powerbus.nodes.sdk.load import LoadCounter

if TYPE_CHECKING:
    from powerbus.bus.kernel.otel import Tracing

__all__ = [
    "ErrorMiddleware",
    "LoadMiddleware",
    "Middleware",
    "MiddlewareInterceptor",
    "TracingMiddleware",
    "call_through",
]

Q = TypeVar("Q")
R = TypeVar("R")

# The bus probes health often; counting probes would drown the node's real traffic.
_UNCOUNTED_PREFIXES = ("/grpc.health.v1.Health/", "/powerbus.link.v1.Link/")
_OK_CODES = (None, grpc.StatusCode.OK)
_BEHAVIORS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


class Middleware(Protocol):
    """Wraps every call a node serves.

    ``around`` is entered before the handler runs and left after it returned (for a
    stream: after its last message), with the handler's exception, if any, raised inside.

    >>> class Timing:
    ...     @contextlib.asynccontextmanager
    ...     async def around(self, method, context):
    ...         started = time.monotonic()
    ...         yield
    ...         log.info("%s took %.3fs", method, time.monotonic() - started)
    """

    def around(self, method: str, context: Any) -> contextlib.AbstractAsyncContextManager[None]:
        """The context manager for one call of ``method``."""
        ...


async def call_through(
    chain: Sequence[Middleware],
    method: str,
    context: Any,
    handler: Callable[[Any, Any], Any],
    request: Any,
) -> Any:
    """Run a unary ``handler(request, context)`` inside every middleware of ``chain``,
    the first outermost."""
    async with contextlib.AsyncExitStack() as stack:
        for middleware in chain:
            await stack.enter_async_context(middleware.around(method, context))
        result = handler(request, context)
        if inspect.isawaitable(result):
            result = await result
        return result


class LoadMiddleware:
    """Feeds a :class:`LoadCounter` from every call but health checks.

    A call failed when its handler raised (``context.abort`` included) or set a non-OK code.
    """

    def __init__(self, counter: LoadCounter) -> None:
        self._counter = counter

    @contextlib.asynccontextmanager
    async def around(self, method: str, context: Any) -> AsyncIterator[None]:
        if method.startswith(_UNCOUNTED_PREFIXES):
            yield
            return
        self._counter.begin()
        failed = True
        try:
            yield
            failed = context.code() not in _OK_CODES
        finally:
            self._counter.end(failed=failed)


class ErrorMiddleware:
    """Aborts a call whose handler raised a :class:`PowerbusError` with that error's status
    and message, so handlers raise ``InvalidArgument("field", "problem")`` and move on."""

    @contextlib.asynccontextmanager
    async def around(self, method: str, context: Any) -> AsyncIterator[None]:
        try:
            yield
        except PowerbusError as exc:
            await abort_with(context, exc)


class TracingMiddleware:
    """Runs every call but health checks in a server span, child of the caller's
    ``traceparent`` (the bus's attempt span), with the call's status; while it runs the span
    is the current one, so calls the handler makes and lines it logs belong to it."""

    def __init__(self, tracing: Tracing) -> None:
        self._tracing = tracing

    @contextlib.asynccontextmanager
    async def around(self, method: str, context: Any) -> AsyncIterator[None]:
        if method.startswith(_UNCOUNTED_PREFIXES):
            yield
            return
        tracing = self._tracing
        span = tracing.server_span(
            method, context.invocation_metadata() or (), **{"powerbus.role": "node"}
        )
        try:
            with tracing.active(span):
                yield
        except BaseException:
            # An abort (ErrorMiddleware's too) set the code before raising.
            tracing.finish(span, _status(context, StatusCode.UNKNOWN))
            raise
        tracing.finish(span, _status(context, StatusCode.OK))


def _status(context: Any, otherwise: StatusCode) -> StatusCode:
    code = context.code()
    return otherwise if code is None else from_grpc(code)


class MiddlewareInterceptor(grpc.aio.ServerInterceptor):
    """Puts a middleware chain around every call of a ``grpc.aio`` server."""

    def __init__(self, chain: Sequence[Middleware]) -> None:
        self._chain = tuple(chain)

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Q, R] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Q, R] | None:
        handler = await continuation(handler_call_details)
        if handler is None:  # unknown method: grpc answers UNIMPLEMENTED itself
            return None
        method: str = handler_call_details.method
        deserialize = getattr(handler, "request_deserializer", None)
        for kind in _BEHAVIORS:
            behavior = getattr(handler, kind, None)
            if behavior is not None:
                # grpc's handlers are namedtuples; replacing fields keeps the serializer.
                # The request deserializer moves into the wrapper, so that a request
                # that does not decode is the caller's INVALID_ARGUMENT, not grpc's UNKNOWN.
                wrapped: grpc.RpcMethodHandler[Q, R] = handler._replace(  # type: ignore[attr-defined]
                    request_deserializer=None,
                    **{kind: self._wrap(method, behavior, deserialize, kind)},
                )
                return wrapped
        return handler

    def _wrap(
        self,
        method: str,
        behavior: Callable[..., Any],
        deserialize: Callable[[bytes], Any] | None,
        kind: str,
    ) -> Callable[..., Any]:
        chain = self._chain
        streamed_requests = kind.startswith("stream_")

        async def decoded(request: Any, context: Any) -> Any:
            if streamed_requests:
                return decoded_requests(method, deserialize, request)
            try:
                return decode_request(method, deserialize, request)
            except PowerbusError as exc:
                await abort_with(context, exc)

        if not inspect.isasyncgenfunction(behavior):

            async def call(request: Any, context: Any) -> Any:
                message = await decoded(request, context)
                return await call_through(chain, method, context, behavior, message)

            return call

        async def stream(request: Any, context: Any) -> Any:
            message = await decoded(request, context)
            async with contextlib.AsyncExitStack() as stack:
                for middleware in chain:
                    await stack.enter_async_context(middleware.around(method, context))
                async for response in behavior(message, context):
                    yield response

        return stream
