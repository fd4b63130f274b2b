"""Metadata keys the router reads, and telling a call that never reached its node.

>>> IDEMPOTENT_KEY
'x-powerbus-idempotent'
"""

from __future__ import annotations

import grpc

__all__ = ["AFFINITY_KEY", "CALLER_KEY", "IDEMPOTENT_KEY", "never_reached"]

AFFINITY_KEY = "x-powerbus-key"
CALLER_KEY = "x-powerbus-caller"
IDEMPOTENT_KEY = "x-powerbus-idempotent"

# Details of an UNAVAILABLE that the request never left us with: no connection could be
# made (the node stopped listening, e.g. while draining), or the node refused the stream.
_NEVER_SENT = (
    "failed to connect to all addresses",
    "Failed to connect to remote host",
    "Connection refused",
    "REFUSED_STREAM",
)


def never_reached(error: grpc.aio.AioRpcError) -> bool:
    """Whether a failed call provably never ran on the node, so any method may be retried:
    no connection, a refused stream, or a node with no handler for the method (one that
    was upgraded in a rolling deployment, say)."""
    code = error.code()
    details = error.details() or ""
    if code is grpc.StatusCode.UNIMPLEMENTED:
        return details == "Method not found!"
    return code is grpc.StatusCode.UNAVAILABLE and any(sign in details for sign in _NEVER_SENT)
