"""The powerbus error tree, and its one mapping onto status codes.

::

    PowerbusError                      (root; .retriable says whether a retry may help)
    ├── ConfigError                    bad configuration; names the key
    ├── InvalidArgument                a request field is wrong; names the field
    ├── NotFound                       a named thing does not exist
    │   └── LeaseExpired               heartbeat for a lease that lapsed: register again
    ├── AlreadyExists                  a unique name is held by someone else
    ├── PermissionDenied               the caller may not do this (names the rule)
    ├── Unimplemented                  no node registered the service
    ├── ResourceExhausted              a limit was hit (a watcher fell too far behind)
    ├── FailedPrecondition             well formed, but the state forbids it (closed account)
    ├── DataLoss                       data is missing or corrupt (a file's totals disagree)
    ├── Unavailable        retriable   the service exists but cannot be reached now
    │   └── NoHealthyNode  retriable   every node of the service is down or draining
    └── DeadlineExceeded   retriable   the caller's deadline passed

Every error raised across a process boundary is one of these; third-party exceptions are
mapped into this tree at the edge of the module that calls the library.
"""

from __future__ import annotations

from powerbus.load_balancer.status import StatusCode

__all__ = [
    "AlreadyExists",
    "ConfigError",
    "DataLoss",
    "DeadlineExceeded",
    "FailedPrecondition",
    "InvalidArgument",
    "LeaseExpired",
    "NoHealthyNode",
    "NotFound",
    "PermissionDenied",
    "PowerbusError",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "error_from_status",
    "status_of",
]


class PowerbusError(Exception):
    """Root of every powerbus error."""

    retriable: bool = False
    status: StatusCode = StatusCode.UNKNOWN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(PowerbusError):
    """A configuration value is missing or wrong; the message names the key."""

    status = StatusCode.FAILED_PRECONDITION


class _FieldError(PowerbusError):
    """An error about one named field; the message starts with the field's name."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class InvalidArgument(_FieldError):
    """A request field is wrong.

    >>> raise InvalidArgument("address", "not host:port: 'x'")
    Traceback (most recent call last):
    powerbus.bus.kernel.errors.InvalidArgument: address: not host:port: 'x'
    """

    status = StatusCode.INVALID_ARGUMENT


class NotFound(PowerbusError):
    status = StatusCode.NOT_FOUND


class LeaseExpired(NotFound):
    """The lease is unknown or lapsed; the node must register again."""


class AlreadyExists(_FieldError):
    """A unique name (a node id, an idempotency key) is held by someone else."""

    status = StatusCode.ALREADY_EXISTS


class PermissionDenied(PowerbusError):
    """The caller may not do this; the message names what and the rule that forbids it."""

    status = StatusCode.PERMISSION_DENIED


class Unauthenticated(PowerbusError):
    """The caller presented credentials that prove nothing (an unknown or revoked token)."""

    status = StatusCode.UNAUTHENTICATED


class Unimplemented(PowerbusError):
    status = StatusCode.UNIMPLEMENTED


class ResourceExhausted(PowerbusError):
    status = StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(PowerbusError):
    """The request is well formed but the state of things forbids it now."""

    status = StatusCode.FAILED_PRECONDITION


class DataLoss(PowerbusError):
    """Data was lost or is corrupt: a file whose control totals disagree with its lines,
    a download whose digest does not match. Nothing of it was applied."""

    status = StatusCode.DATA_LOSS


class Unavailable(PowerbusError):
    retriable = True
    status = StatusCode.UNAVAILABLE


class NoHealthyNode(Unavailable):
    """Every node of a registered service is down or draining."""


class DeadlineExceeded(PowerbusError):
    retriable = True
    status = StatusCode.DEADLINE_EXCEEDED


_BY_STATUS: dict[StatusCode, type[PowerbusError]] = {
    StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    StatusCode.DATA_LOSS: DataLoss,
    StatusCode.NOT_FOUND: NotFound,
    StatusCode.PERMISSION_DENIED: PermissionDenied,
    StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    StatusCode.UNIMPLEMENTED: Unimplemented,
    StatusCode.UNAUTHENTICATED: Unauthenticated,
    StatusCode.UNAVAILABLE: Unavailable,
    StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}


def status_of(error: BaseException) -> StatusCode:
    """The status code a powerbus error is sent as (UNKNOWN for anything else)."""
    return error.status if isinstance(error, PowerbusError) else StatusCode.UNKNOWN


def error_from_status(code: StatusCode, details: str) -> PowerbusError:
    """The powerbus error for a status received from a peer."""
    if code is StatusCode.INVALID_ARGUMENT:
        field, _, problem = details.partition(": ")
        return InvalidArgument(field, problem or details)
    if code is StatusCode.ALREADY_EXISTS:
        field, _, problem = details.partition(": ")
        return AlreadyExists(field, problem or details)
    error = _BY_STATUS.get(code, PowerbusError)(details)
    if error.status is StatusCode.UNKNOWN:
        error.status = code
    return error
