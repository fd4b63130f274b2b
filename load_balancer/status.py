"""Status codes of a call, as gRPC defines them, without importing grpc.

The load balancer judges outcomes by them (a node failure or an answer about the request),
the recorder counts by them and the node link carries their numbers, so they are one enum
here; ``grpc.StatusCode`` appears only at the edges that speak gRPC
(:mod:`powerbus.bus.transport.grpc_status`).

Members are strings equal to their names, so they print, compare and serialise as the
names gRPC tools show:

>>> StatusCode.UNAVAILABLE == "UNAVAILABLE", StatusCode.UNAVAILABLE.number
(True, 14)
>>> StatusCode.from_number(5)
<StatusCode.NOT_FOUND: 'NOT_FOUND'>
>>> f"{StatusCode.OK}"
'OK'
"""

from __future__ import annotations

from enum import Enum

__all__ = ["NODE_FAILURE_CODES", "StatusCode"]


class StatusCode(str, Enum):
    """A call's status (gRPC's codes, by name; ``number`` is the wire value)."""

    OK = "OK"
    CANCELLED = "CANCELLED"
    UNKNOWN = "UNKNOWN"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    ABORTED = "ABORTED"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    UNIMPLEMENTED = "UNIMPLEMENTED"
    INTERNAL = "INTERNAL"
    UNAVAILABLE = "UNAVAILABLE"
    DATA_LOSS = "DATA_LOSS"
    UNAUTHENTICATED = "UNAUTHENTICATED"

    # The same text on every Python: 3.10 and 3.11 format a str-mixin enum by its name
    # and 3.12 by its value otherwise.
    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, format_spec: str) -> str:
        return str.__format__(self, format_spec)

    @property
    def number(self) -> int:
        """The code's number on the wire (``OK`` is 0, ``UNAUTHENTICATED`` 16)."""
        return _NUMBERS[self]

    @classmethod
    def from_number(cls, number: int) -> StatusCode:
        """The code with wire value ``number``; an unknown number is ``UNKNOWN``."""
        return _BY_NUMBER.get(number, cls.UNKNOWN)


_BY_NUMBER: dict[int, StatusCode] = dict(enumerate(StatusCode))
_NUMBERS: dict[StatusCode, int] = {code: number for number, code in _BY_NUMBER.items()}

NODE_FAILURE_CODES: frozenset[StatusCode] = frozenset(
    {
        StatusCode.UNAVAILABLE,
        StatusCode.DEADLINE_EXCEEDED,
        StatusCode.INTERNAL,
        StatusCode.UNKNOWN,
        StatusCode.DATA_LOSS,
    }
)
"""Status codes that say the node failed, not the request: they count towards outlier
ejection and circuit breakers. ``NOT_FOUND``, ``INVALID_ARGUMENT`` and other answers
about the request are a healthy node's replies; ``CANCELLED`` is the caller's doing."""
