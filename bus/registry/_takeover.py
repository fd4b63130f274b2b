"""Taking a live node id over: allowed only to the instance now answering at its address.

A node id held by a live lease is given again only to its holder. A node that restarted
before its old lease lapsed no longer has the lease, so it proves instead that it is the
process now at the address: its RegisterRequest carries a per-process secret, and the bus
dials ``NodeInstance/Identify`` (with a deadline) to read the digest that process serves.

- The holder's address answers with this node id and the registrant's digest: the
  registrant is the instance there now (restarted on the same port, or a retry).
- It answers with this node id and another digest: a live instance holds the id; refused.
- Nothing listens there any more (or another node does): the holder is gone, and the
  registrant's own address must answer with its digest.
- No answer within the deadline, or an answer that proves nothing: refused, retriable.
"""

from __future__ import annotations

import enum
import hashlib

import grpc

from powerbus.bus.kernel.errors import AlreadyExists, PermissionDenied, Unavailable
from powerbus.registry.v1 import registry_pb2, registry_pb2_grpc

__all__ = ["prove_takeover"]

IDENTIFY_TIMEOUT_S = 1.0


class _Gone(enum.Enum):
    GONE = "gone"


async def prove_takeover(
    *,
    node_id: str,
    holder_address: str,
    address: str,
    secret: bytes,
    timeout: float = IDENTIFY_TIMEOUT_S,
    credentials: grpc.ChannelCredentials | None = None,
) -> None:
    """Return if the registrant may replace the live holder of ``node_id``; else raise
    :class:`AlreadyExists`, :class:`PermissionDenied` or (retriable) :class:`Unavailable`.

    ``credentials``: how to dial nodes when the bus runs TLS (they then serve only TLS)."""
    digest = hashlib.sha256(secret).digest()
    there = await _identify(holder_address, timeout, credentials)
    if not isinstance(there, _Gone) and there.node_id == node_id:
        if there.instance_digest == digest:
            return
        raise AlreadyExists(
            "node_id",
            f"{node_id!r} is held by the live instance at {holder_address}; "
            "only its lease holder may register it again",
        )
    if address != holder_address:
        there = await _identify(address, timeout, credentials)
    if not isinstance(there, _Gone) and (there.node_id, there.instance_digest) == (node_id, digest):
        return
    raise PermissionDenied(
        f"instance_secret: {address} does not answer NodeInstance/Identify as {node_id!r} "
        "with this registration's instance digest, so it cannot take the id over"
    )


async def _identify(
    address: str, timeout: float, credentials: grpc.ChannelCredentials | None
) -> registry_pb2.IdentifyResponse | _Gone:
    """What answers at ``address``; GONE when nothing listens there."""
    channel = (
        grpc.aio.insecure_channel(address)
        if credentials is None
        else grpc.aio.secure_channel(address, credentials)
    )
    async with channel:
        stub = registry_pb2_grpc.NodeInstanceStub(channel)
        try:
            return await stub.Identify(registry_pb2.IdentifyRequest(), timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
    if code is grpc.StatusCode.UNAVAILABLE:
        return _Gone.GONE
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        raise Unavailable(
            f"{address} did not answer NodeInstance/Identify within {timeout:g} s, so the bus "
            "cannot tell whether the holder is alive; retry"
        )
    raise AlreadyExists(
        "node_id",
        f"{address} answers NodeInstance/Identify with {code.name}, so the bus cannot tell "
        "whether the holder is alive; wait for its lease to lapse",
    )
