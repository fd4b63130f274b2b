"""Calling other services through the bus.

A :class:`BusChannel` is one gRPC channel to the bus whose interceptor stamps every call
with the caller's node id (``x-powerbus-caller``) and gives calls without a deadline a
default one, so handlers never forget either.

>>> async def main() -> None:
...     async with BusChannel(target="127.0.0.1:50051", caller="billing-1") as bus:
...         echo = bus.stub(echo_pb2_grpc.EchoStub)
...         reply = await echo.Echo(echo_pb2.EchoRequest(message="hi"))
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import grpc

from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.metadata import CALLER_KEY

__all__ = ["CALLER_KEY", "BusChannel", "caller_interceptors"]


S = TypeVar("S")


class _CallerStamp:
    """Adds ``x-powerbus-caller`` (unless the call set one) and a default deadline."""

    def __init__(self, *, caller: str, default_timeout: float) -> None:
        self._caller = caller
        self._default_timeout = default_timeout

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        if metadata.get(CALLER_KEY) is None:
            metadata.add(CALLER_KEY, self._caller)
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


def caller_interceptors(*, caller: str, default_timeout: float) -> list[grpc.aio.ClientInterceptor]:
    """Client interceptors for all four call shapes that stamp ``x-powerbus-caller: caller``
    and give calls without a deadline ``default_timeout`` seconds."""
    return [
        shape(caller=caller, default_timeout=default_timeout)
        for shape in (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)
    ]


class BusChannel:
    """A channel to the bus for one caller; stubs made from it route through the bus.

    Create it inside a running event loop; ``close()`` (or ``async with``) releases it.
    ``target`` may also be a node's own address, to call it directly (tests do).
    ``credentials`` (``TlsFiles.channel_credentials()``) make it a TLS channel.
    """

    def __init__(
        self,
        *,
        target: HostPort | str,
        caller: str,
        default_timeout: float = 10.0,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self.target = str(target)
        self.caller = caller
        interceptors = caller_interceptors(caller=caller, default_timeout=default_timeout)
        if credentials is None:
            self.channel = grpc.aio.insecure_channel(self.target, interceptors=interceptors)
        else:  # TLS to the bus (mutual when the credentials carry a certificate)
            self.channel = grpc.aio.secure_channel(
                self.target, credentials, interceptors=interceptors
            )
        self._stubs: dict[Callable[[grpc.aio.Channel], Any], Any] = {}

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
