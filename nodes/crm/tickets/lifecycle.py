"""Which status moves a ticket may make (the ``TicketStatus`` comment in crm.proto).

Forward along OPEN → ASSIGNED → ON_SITE → IN_PROGRESS → RESOLVED → CLOSED, skipping any
of ASSIGNED, ON_SITE and IN_PROGRESS; RESOLVED → IN_PROGRESS reopens; OPEN or ASSIGNED →
CANCELLED. CLOSED and CANCELLED are final.

>>> check_transition(OPEN, ON_SITE)
>>> check_transition(CLOSED, OPEN)  # doctest: +ELLIPSIS
Traceback (most recent call last):
powerbus...TransitionRefused: status: cannot move from TICKET_STATUS_CLOSED to ...OPEN (...)
"""

from __future__ import annotations

from powerbus.bus.kernel.errors import PowerbusError
from powerbus.crm.v1 import crm_pb2
from powerbus.load_balancer import StatusCode

__all__ = [
    "FINAL",
    "OPEN_STATUSES",
    "TransitionRefused",
    "allowed_moves",
    "check_transition",
    "status_name",
]

OPEN = crm_pb2.TICKET_STATUS_OPEN
ASSIGNED = crm_pb2.TICKET_STATUS_ASSIGNED
ON_SITE = crm_pb2.TICKET_STATUS_ON_SITE
IN_PROGRESS = crm_pb2.TICKET_STATUS_IN_PROGRESS
RESOLVED = crm_pb2.TICKET_STATUS_RESOLVED
CLOSED = crm_pb2.TICKET_STATUS_CLOSED
CANCELLED = crm_pb2.TICKET_STATUS_CANCELLED

_FORWARD = (OPEN, ASSIGNED, ON_SITE, IN_PROGRESS, RESOLVED, CLOSED)
FINAL = frozenset({CLOSED, CANCELLED})
OPEN_STATUSES = frozenset({OPEN, ASSIGNED, ON_SITE, IN_PROGRESS, RESOLVED})
"""Statuses of a ticket that still needs something (the view's "open tickets")."""


class TransitionRefused(PowerbusError):
    """A status move the lifecycle does not allow (FAILED_PRECONDITION); names from and to."""

    status = StatusCode.FAILED_PRECONDITION


def status_name(status: int) -> str:
    """``TICKET_STATUS_OPEN`` for 1, and so on."""
    return crm_pb2.TicketStatus.Name(status)  # type: ignore[arg-type]


def allowed_moves(current: int) -> tuple[int, ...]:
    """Every status ``current`` may move to, in lifecycle order."""
    if current in FINAL:
        return ()
    moves: list[int] = []
    if current in _FORWARD:
        position = _FORWARD.index(current)
        # RESOLVED cannot be skipped: CLOSED follows only it.
        moves = [s for s in _FORWARD[position + 1 :] if s != CLOSED or current == RESOLVED]
    if current == RESOLVED:
        moves.insert(0, IN_PROGRESS)
    if current in (OPEN, ASSIGNED):
        moves.append(CANCELLED)
    return tuple(moves)


def check_transition(current: int, target: int) -> None:
    """Raise :class:`TransitionRefused` unless ``current`` → ``target`` is allowed.

    Staying put is allowed (a retried update changes nothing).
    """
    if current == target:
        return
    moves = allowed_moves(current)
    if target not in moves:
        allowed = ", ".join(status_name(s) for s in moves) or "none, it is final"
        raise TransitionRefused(
            f"status: cannot move from {status_name(current)} to {status_name(target)} "
            f"(allowed: {allowed})"
        )
