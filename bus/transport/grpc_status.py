"""Where :class:`~powerbus.load_balancer.StatusCode` meets ``grpc.StatusCode``: the one
mapping between them, and what a failed gRPC call says about whether it ran.
"""

from __future__ import annotations

from typing import Any, NoReturn

import grpc

from powerbus.bus.kernel.errors import PowerbusError
from powerbus.load_balancer.status import StatusCode

__all__ = ["abort_with", "from_grpc", "never_reached", "to_grpc"]

_TO_GRPC: dict[StatusCode, grpc.StatusCode] = {c: grpc.StatusCode[c.name] for c in StatusCode}
_FROM_GRPC: dict[grpc.StatusCode, StatusCode] = {g: c for c, g in _TO_GRPC.items()}

# Details of an UNAVAILABLE that the request never left us with: no connection could be
# made (the node stopped listening, e.g. while draining), or the node refused the stream.
_NEVER_SENT = (
    "failed to connect to all addresses",
    "Failed to connect to remote host",
    "Connection refused",
    "REFUSED_STREAM",
)


def to_grpc(code: StatusCode) -> grpc.StatusCode:
    """``grpc.StatusCode`` of the same name.

    >>> to_grpc(StatusCode.NOT_FOUND)
    <StatusCode.NOT_FOUND: (5, 'not found')>
    """
    return _TO_GRPC[code]


def from_grpc(code: grpc.StatusCode) -> StatusCode:
    """Our :class:`StatusCode` of the same name."""
    return _FROM_GRPC[code]


async def abort_with(context: Any, error: PowerbusError) -> NoReturn:
    """End a gRPC call (``grpc.aio.ServicerContext``) with ``error``'s status and message."""
    await context.abort(_TO_GRPC[error.status], error.message)
    raise AssertionError("unreachable: abort raises")  # pragma: no cover


def never_reached(error: grpc.aio.AioRpcError) -> bool:
    """Whether a failed call provably never ran on the node, so any method may be retried:
    no connection, a refused stream, or a node with no handler for the method (one that
    was upgraded in a rolling deployment, say)."""
    code = error.code()
    details = error.details() or ""
    if code is grpc.StatusCode.UNIMPLEMENTED:
        return details == "Method not found!"
    return code is grpc.StatusCode.UNAVAILABLE and any(sign in details for sign in _NEVER_SENT)
