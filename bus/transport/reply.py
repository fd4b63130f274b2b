"""What one unary call to a node gave back, whichever way it travelled."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from powerbus.load_balancer.status import StatusCode

__all__ = ["Metadata", "Reply", "Transport"]

Metadata = tuple[tuple[str, "str | bytes"], ...]


class Reply:
    """A node's answer to one unary call: status, details, both metadata sets, payload.

    ``ran`` is False only when the call provably never ran on the node (refused while
    connecting, or by a draining node), so any method may be retried elsewhere.

    >>> Reply(StatusCode.NOT_FOUND, details="no meter m-1").ok
    False
    """

    __slots__ = ("code", "details", "initial", "payload", "ran", "trailing")

    def __init__(
        self,
        code: StatusCode,
        payload: bytes = b"",
        *,
        details: str = "",
        initial: Metadata = (),
        trailing: Metadata = (),
        ran: bool = True,
    ) -> None:
        self.code = code
        self.payload = payload
        self.details = details
        self.initial = initial
        self.trailing = trailing
        self.ran = ran

    @property
    def ok(self) -> bool:
        return self.code is StatusCode.OK

    def __repr__(self) -> str:
        return f"Reply({self.code.name}, {len(self.payload)} bytes, details={self.details!r})"


class Transport(Protocol):
    """Carries unary calls to one node: the node link, a gRPC channel, or either.

    Never raises for what the node or the network did: every outcome is a :class:`Reply`
    (cancelling the awaiting task cancels the call).
    """

    def call(
        self, path: str, metadata: Metadata, payload: bytes, timeout: float | None
    ) -> Awaitable[Reply]:
        """Send ``payload`` to method ``path`` with ``timeout`` seconds to answer."""
        ...
