"""The request size limit as gRPC server options (see :mod:`powerbus.bus.kernel.limits`).

grpc checks a message's length prefix against ``grpc.max_receive_message_length`` and
answers ``RESOURCE_EXHAUSTED`` ("Received message larger than max (size vs. limit)")
without buffering the body.

>>> size_options(1024)
(('grpc.max_receive_message_length', 1024),)
"""

from __future__ import annotations

__all__ = ["size_options"]


def size_options(max_request_bytes: int) -> tuple[tuple[str, int], ...]:
    """Server options refusing requests over ``max_request_bytes``."""
    if max_request_bytes <= 0:
        raise ValueError(f"max_request_bytes must be positive, not {max_request_bytes}")
    return (("grpc.max_receive_message_length", max_request_bytes),)
