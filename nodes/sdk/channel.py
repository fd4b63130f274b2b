"""Calling other services through the bus.

A :class:`BusChannel` is one gRPC channel to the bus whose interceptor stamps every call
with the caller's node id (``x-powerbus-caller``) and gives calls without a deadline a
default one, so handlers never forget either. When tracing is on, each call is a client
span, child of the span active in the caller's task (the call the node is serving), and
carries it to the bus as ``traceparent``.

>>> async def main() -> None:
...     async with BusChannel(target="127.0.0.1:50051", caller="billing-1") as bus:
...         echo = bus.stub(echo_pb2_grpc.EchoStub)
...         reply = await echo.Echo(echo_pb2.EchoRequest(message="hi"))
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.metadata import AUTHORIZATION_KEY, CALLER_KEY
from powerbus.bus.transport.grpc_status import from_grpc
from powerbus.load_balancer import StatusCode

if TYPE_CHECKING:
    from powerbus.bus.kernel.otel import Span, Tracing

__all__ = ["CALLER_KEY", "BusChannel", "caller_interceptors"]


S = TypeVar("S")


class _CallerStamp:
    """Adds ``x-powerbus-caller`` (unless the call set one), the bearer token if there is
    one, and a default deadline."""

    def __init__(self, *, caller: str, default_timeout: float, token: str | None = None) -> None:
        self._caller = caller
        self._default_timeout = default_timeout
        self._authorization = f"Bearer {token}" if token else None

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        if metadata.get(CALLER_KEY) is None:
            metadata.add(CALLER_KEY, self._caller)
        if self._authorization is not None and metadata.get(AUTHORIZATION_KEY) is None:
            metadata.add(AUTHORIZATION_KEY, self._authorization)
        timeout = self._default_timeout if details.timeout is None else details.timeout
        return grpc.aio.ClientCallDetails(
            method=details.method,
            timeout=timeout,
            metadata=metadata,
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
        )


# grpc.aio files an interceptor under the first call shape it implements only, so each
# shape needs an object of its own.
class _UnaryUnary(_CallerStamp, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        return await continuation(self._details(client_call_details), request)


class _UnaryStream(_CallerStamp, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        return await continuation(self._details(client_call_details), request)


class _StreamUnary(_CallerStamp, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(
        self, continuation: Callable[..., Any], client_call_details: Any, request_iterator: Any
    ) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)


class _StreamStream(_CallerStamp, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(
        self, continuation: Callable[..., Any], client_call_details: Any, request_iterator: Any
    ) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)


# The node's own upkeep with the bus (registration, heartbeats, traffic reports, policy
# watches): not calls of anyone's, so not traced; a heartbeat would start a trace each time.
_UNTRACED = (
    "/powerbus.registry.v1.",
    "/powerbus.traffic.v1.",
    "/powerbus.policy.v1.",
    "/grpc.health.v1.",
)


class _TraceStamp:
    """Makes each call a client span and sends its context as ``traceparent``."""

    def __init__(self, tracing: Tracing) -> None:
        self._tracing = tracing
        self._finishing: set[asyncio.Future[None]] = set()

    def _start(self, details: grpc.aio.ClientCallDetails) -> tuple[Any, Span]:
        method = _method(details)
        span = self._tracing.client_span(method.lstrip("/"), method, **{"powerbus.role": "client"})
        metadata = self._tracing.inject(tuple(details.metadata or ()), span)
        traced = grpc.aio.ClientCallDetails(
            method=details.method,
            timeout=details.timeout,
            metadata=grpc.aio.Metadata(*metadata),
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
        )
        return traced, span

    async def _made(self, span: Span, make: Callable[[], Any]) -> Any:
        try:
            call = await make()
        except grpc.aio.AioRpcError as exc:
            self._tracing.finish(span, from_grpc(exc.code()), exc.details() or "")
            raise
        except BaseException:
            self._tracing.finish(span, StatusCode.CANCELLED)
            raise
        call.add_done_callback(lambda done: self._ended(span, done))
        return call

    def _ended(self, span: Span, call: Any) -> None:
        if call.cancelled():
            self._tracing.finish(span, StatusCode.CANCELLED)
            return
        # grpc.aio gives a call's status by coroutine only; the call is over, so it returns
        # at once. The set holds the task until then.
        task = asyncio.ensure_future(self._finish(span, call))
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    async def _traced(
        self, continuation: Callable[..., Any], call_details: Any, request: Any
    ) -> Any:
        """One shape for all four interceptors: a span around the call, unless it is upkeep."""
        if _method(call_details).startswith(_UNTRACED):
            return await continuation(call_details, request)
        details, span = self._start(call_details)
        return await self._made(span, lambda: continuation(details, request))

    async def _finish(self, span: Span, call: Any) -> None:
        code = from_grpc(await call.code())
        self._tracing.finish(span, code, await call.details() or "")


def _method(details: grpc.aio.ClientCallDetails) -> str:
    method = details.method
    return method.decode() if isinstance(method, bytes) else method


class _TracedUnaryUnary(_TraceStamp, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        return await self._traced(continuation, client_call_details, request)


class _TracedUnaryStream(_TraceStamp, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], client_call_details: Any, request: Any
    ) -> Any:
        return await self._traced(continuation, client_call_details, request)


class _TracedStreamUnary(_TraceStamp, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(
        self, continuation: Callable[..., Any], client_call_details: Any, request_iterator: Any
    ) -> Any:
        return await self._traced(continuation, client_call_details, request_iterator)


class _TracedStreamStream(_TraceStamp, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(
        self, continuation: Callable[..., Any], client_call_details: Any, request_iterator: Any
    ) -> Any:
        return await self._traced(continuation, client_call_details, request_iterator)


def caller_interceptors(
    *,
    caller: str,
    default_timeout: float,
    tracing: Tracing | None = None,
    token: str | None = None,
) -> list[grpc.aio.ClientInterceptor]:
    """Client interceptors for all four call shapes that stamp ``x-powerbus-caller: caller``
    (and ``authorization: Bearer token``) and give calls without a deadline
    ``default_timeout`` seconds; with ``tracing``, each call is also a client span sent on
    as ``traceparent``."""
    interceptors: list[grpc.aio.ClientInterceptor] = [
        shape(caller=caller, default_timeout=default_timeout, token=token)
        for shape in (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)
    ]
    if tracing is not None:
        interceptors += [
            traced(tracing)
            for traced in (
                _TracedUnaryUnary,
                _TracedUnaryStream,
                _TracedStreamUnary,
                _TracedStreamStream,
            )
        ]
    return interceptors


class BusChannel:
    """A channel to the bus for one caller; stubs made from it route through the bus.

    Create it inside a running event loop; ``close()`` (or ``async with``) releases it.
    ``target`` may also be a node's own address, to call it directly (tests do).
    ``credentials`` (``TlsFiles.channel_credentials()``) make it a TLS channel; ``token``
    (``powerbus tokens create``) is presented on every call to prove the caller's identity.
    """

    def __init__(
        self,
        *,
        target: HostPort | str,
        caller: str,
        default_timeout: float = 10.0,
        tracing: Tracing | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        token: str | None = None,
    ) -> None:
        self.target = str(target)
        self.caller = caller
        self._credentials = credentials
        self.tracing = tracing
        """The process's tracing, when on (the CORBA gateway traces its own calls with it)."""
        interceptors = self._interceptors = caller_interceptors(
            caller=caller, default_timeout=default_timeout, tracing=tracing, token=token
        )
        if credentials is None:
            self.channel = grpc.aio.insecure_channel(self.target, interceptors=interceptors)
        else:  # TLS to the bus (mutual when the credentials carry a certificate)
            self.channel = grpc.aio.secure_channel(
                self.target, credentials, interceptors=interceptors
            )
        self._stubs: dict[Callable[[grpc.aio.Channel], Any], Any] = {}

    def dial(self, target: str) -> grpc.aio.Channel:
        """A new channel to another address (a node's, for a call that must reach that
        node): the same certificate, token and caller stamp as this one. The caller owns
        and closes it."""
        if self._credentials is None:
            return grpc.aio.insecure_channel(target, interceptors=self._interceptors)
        return grpc.aio.secure_channel(target, self._credentials, interceptors=self._interceptors)

    def stub(self, stub_type: Callable[[grpc.aio.Channel], S]) -> S:
        """The generated ``stub_type`` on this channel (made once, then reused)."""
        try:
            return self._stubs[stub_type]  # type: ignore[no-any-return]
        except KeyError:
            stub = self._stubs[stub_type] = stub_type(self.channel)
            return stub

    async def close(self) -> None:
        """Close the channel; calls still running are cancelled. Idempotent."""
        await self.channel.close()

    async def __aenter__(self) -> BusChannel:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
