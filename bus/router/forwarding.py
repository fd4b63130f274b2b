"""Forwarding one call to one node, for each of gRPC's four call shapes.

Bytes pass through undecoded. The caller's deadline and metadata go to the node; the
node's initial metadata, status, details and trailing metadata come back unchanged. If
the caller cancels, the call to the node is cancelled too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, NoReturn

import grpc

from powerbus.bus.kernel.masking import scrub
from powerbus.bus.kernel.metadata import AUTHORIZATION_KEY, IDENTITY_KEY
from powerbus.bus.transport.grpc_status import from_grpc
from powerbus.bus.transport.reply import Metadata
from powerbus.load_balancer import StatusCode

__all__ = [
    "Context",
    "Metadata",
    "forward_to_reply",
    "forward_to_reply_stream",
]

if TYPE_CHECKING:
    from powerbus.bus.router.call import RoutedCall

    Context = grpc.aio.ServicerContext[bytes, bytes]

# Keys the gRPC stack sets itself on each hop; forwarding them would duplicate them.
_HOP_BY_HOP = frozenset(
    {
        "user-agent",
        "content-type",
        "te",
        "host",
        "grpc-timeout",
        "grpc-encoding",
        "grpc-accept-encoding",
        # The caller's bearer token proves the caller to the bus; a node handed it could
        # act as the caller anywhere.
        AUTHORIZATION_KEY,
        # Only the router says who the caller is; a caller's own claim is dropped.
        IDENTITY_KEY,
    }
)


def forwardable(metadata: Any) -> Metadata:
    """The caller's metadata that travels on to the node."""
    return tuple(
        (m.key, m.value)
        for m in metadata or ()
        if m.key not in _HOP_BY_HOP and not m.key.startswith(":")
    )


async def _relay_failure(
    context: Context, call: RoutedCall, error: grpc.aio.AioRpcError
) -> NoReturn:
    call.code = from_grpc(error.code())
    details = scrub(error.details() or "")  # may quote the request: shown masked
    await context.abort(error.code(), details, tuple(error.trailing_metadata() or ()))
    raise AssertionError("unreachable: abort raises")  # pragma: no cover


async def _relay_initial(context: Context, upstream: Any) -> None:
    initial = await upstream.initial_metadata()
    if initial:
        await context.send_initial_metadata(initial)


def _relay_trailing(context: Context, trailing: Any) -> None:
    if trailing:
        context.set_trailing_metadata(tuple(trailing))


async def _counted(requests: AsyncIterator[bytes], call: RoutedCall) -> AsyncIterator[bytes]:
    async for request in requests:
        call.bytes_in += len(request)
        yield request


def _outgoing(request: bytes | AsyncIterator[bytes], call: RoutedCall) -> Any:
    if isinstance(request, bytes):
        call.bytes_in = len(request)
        return request
    return _counted(request, call)


async def forward_to_reply(
    call: RoutedCall, request: bytes | AsyncIterator[bytes], context: Context
) -> bytes:
    """Forward a unary or client-streaming call; ``request`` is the message or the stream."""
    upstream = call.node(
        _outgoing(request, call), timeout=context.time_remaining(), metadata=call.metadata
    )
    try:
        reply: bytes = await upstream
    except grpc.aio.AioRpcError as error:
        await _relay_failure(context, call, error)
    except BaseException:
        call.code = StatusCode.CANCELLED
        raise
    finally:
        upstream.cancel()  # no-op once done; ends the node's call if ours was cancelled
    call.bytes_out = len(reply)
    await _relay_initial(context, upstream)
    _relay_trailing(context, await upstream.trailing_metadata())
    return reply


async def forward_to_reply_stream(
    call: RoutedCall, request: bytes | AsyncIterator[bytes], context: Context
) -> AsyncIterator[bytes]:
    """Forward a server- or bidi-streaming call, yielding the node's replies as they come."""
    upstream = call.node(
        _outgoing(request, call), timeout=context.time_remaining(), metadata=call.metadata
    )
    try:
        await _relay_initial(context, upstream)
        async for reply in upstream:
            call.bytes_out += len(reply)
            yield reply
        _relay_trailing(context, await upstream.trailing_metadata())
    except grpc.aio.AioRpcError as error:
        await _relay_failure(context, call, error)
    except BaseException:
        call.code = StatusCode.CANCELLED
        raise
    finally:
        upstream.cancel()
