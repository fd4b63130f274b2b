"""Size limits that must agree across the bus, the node link and the nodes.

One setting, ``max_request_bytes`` (``[bus]`` and ``[node]`` sections, ``--max-request-bytes``,
``POWERBUS_MAX_REQUEST_BYTES``), bounds a request body everywhere a request is received:
a larger one is refused with ``RESOURCE_EXHAUSTED`` naming its size and the limit, from
its length prefix, before its body is buffered.

>>> DEFAULT_MAX_REQUEST_BYTES == 4 * 1024 * 1024
True
>>> link_message_limit(1000)
66536
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_MAX_BYTES_IN_FLIGHT",
    "DEFAULT_MAX_REQUEST_BYTES",
    "LINK_FRAME_HEADROOM",
    "link_message_limit",
]

DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024
"""grpc's own default for received messages, kept so a node and the bus refuse alike."""

DEFAULT_MAX_BYTES_IN_FLIGHT = 256 * 1024 * 1024
"""Request bytes the bus's router holds at once (64 requests of the largest size)."""

LINK_FRAME_HEADROOM = 64 * 1024
"""Room a link frame needs beside its payload: method path, metadata, deadline."""


def link_message_limit(max_request_bytes: int) -> int:
    """Largest node-link message that can carry a request of ``max_request_bytes``."""
    return max_request_bytes + LINK_FRAME_HEADROOM
