"""Request decoding that blames the caller: bytes that are not the method's request
message are ``INVALID_ARGUMENT``, never ``UNKNOWN``.

grpc decodes a request before the handler runs and answers a failed decode with
``UNKNOWN``; the bus and proxyless clients count ``UNKNOWN`` as the node's fault, so one
client sending garbage would open the breakers of healthy nodes. :func:`decoded_handler`
moves decoding into the handler, where a failure is refused as the caller's error before
any middleware (load counting included) sees the call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from google.protobuf.message import DecodeError

from powerbus.bus.kernel.errors import InvalidArgument

__all__ = ["decode_request", "decoded_requests"]

Deserializer = Callable[[bytes], Any]

# What a generated ``FromString`` raises on bytes that are not its message: protobuf's
# DecodeError, and with the pure-python or upb backends sometimes one of these.
_DECODE_ERRORS = (DecodeError, ValueError, TypeError, IndexError, UnicodeDecodeError)


def decode_request(method: str, deserialize: Deserializer | None, raw: Any) -> Any:
    """``raw`` decoded by ``deserialize``; :class:`InvalidArgument` naming the method and
    size when it is not a valid request message.

    >>> from powerbus.echo.v1 import echo_pb2
    >>> decode_request("/m", echo_pb2.EchoRequest.FromString, b"\\x0a\\x02hi").message
    'hi'
    >>> try:
    ...     decode_request("/m", echo_pb2.EchoRequest.FromString, b"\\xff\\xff\\xff")
    ... except InvalidArgument as error:
    ...     print(str(error).split(" (")[0])
    request: 3 bytes are not a valid request of /m
    """
    if deserialize is None:
        return raw
    try:
        return deserialize(raw)
    except _DECODE_ERRORS as exc:
        size = len(raw) if isinstance(raw, bytes | bytearray) else 0
        raise InvalidArgument(
            "request", f"{size} bytes are not a valid request of {method} ({exc})"
        ) from None


async def decoded_requests(
    method: str, deserialize: Deserializer | None, raw: AsyncIterator[Any]
) -> AsyncIterator[Any]:
    """A client stream's messages, each decoded as by :func:`decode_request`."""
    async for message in raw:
        yield decode_request(method, deserialize, message)
