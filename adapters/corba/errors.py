"""The one table between gRPC status codes and CORBA exceptions, both ways.

Codes about the caller's data become the IDL user exceptions of the bus's CORBA face
(``::powerbus::NotFound``, ``Conflict``, ``FailedPrecondition``; see
``powerbus.adapters.corba.idl.exceptions``); every other code becomes a CORBA system exception:

=====================  ======================  =====================================
gRPC status            CORBA system exception  back to gRPC
=====================  ======================  =====================================
UNAVAILABLE            TRANSIENT               UNAVAILABLE (also COMM_FAILURE,
                                               OBJECT_NOT_EXIST, INV_OBJREF)
DEADLINE_EXCEEDED      TIMEOUT                 DEADLINE_EXCEEDED
INVALID_ARGUMENT       BAD_PARAM               INVALID_ARGUMENT
OUT_OF_RANGE           BAD_PARAM               INVALID_ARGUMENT
PERMISSION_DENIED      NO_PERMISSION           PERMISSION_DENIED
UNAUTHENTICATED        NO_PERMISSION           PERMISSION_DENIED
UNIMPLEMENTED          NO_IMPLEMENT            UNIMPLEMENTED (also BAD_OPERATION)
RESOURCE_EXHAUSTED     NO_RESOURCES            RESOURCE_EXHAUSTED (also IMP_LIMIT,
                                               NO_MEMORY)
DATA_LOSS              DATA_CONVERSION         DATA_LOSS
CANCELLED              TRANSIENT               UNAVAILABLE
INTERNAL               INTERNAL                INTERNAL (also MARSHAL, BAD_INV_ORDER,
                                               and every system exception not listed)
UNKNOWN                UNKNOWN                 UNKNOWN
=====================  ======================  =====================================

A system exception raised by powerbus carries the exact gRPC code in its minor code
(:data:`POWERBUS_VMCID` ``| code``), so a code the table folds (OUT_OF_RANGE into
BAD_PARAM) comes back unchanged when the exception returns to a powerbus peer.

>>> status_for_system_exception("TIMEOUT", minor=0)
<StatusCode.DEADLINE_EXCEEDED: (4, 'deadline exceeded')>
>>> system_exception_for_status(grpc.StatusCode.UNAVAILABLE)
('TRANSIENT', 1346502670)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc

from powerbus.adapters.corba.idl.exceptions import DOMAIN_EXCEPTIONS, exception_for_code
from powerbus.bus.kernel.errors import PowerbusError, error_from_status
from powerbus.load_balancer import StatusCode

__all__ = [
    "POWERBUS_VMCID",
    "STATUS_TO_SYSTEM",
    "SYSTEM_TO_STATUS",
    "corba_exception_for_status",
    "error_for_corba_exception",
    "error_for_status",
    "status_for_corba_exception",
    "status_for_system_exception",
    "system_exception_for_status",
]

POWERBUS_VMCID = 0x50420000
"""Vendor minor code set of powerbus ("PB"): the low 12 bits hold the gRPC status code."""

_S = grpc.StatusCode

STATUS_TO_SYSTEM: Mapping[grpc.StatusCode, str] = {
    _S.UNAVAILABLE: "TRANSIENT",
    _S.DEADLINE_EXCEEDED: "TIMEOUT",
    _S.INVALID_ARGUMENT: "BAD_PARAM",
    _S.OUT_OF_RANGE: "BAD_PARAM",
    _S.PERMISSION_DENIED: "NO_PERMISSION",
    _S.UNAUTHENTICATED: "NO_PERMISSION",
    _S.UNIMPLEMENTED: "NO_IMPLEMENT",
    _S.RESOURCE_EXHAUSTED: "NO_RESOURCES",
    _S.DATA_LOSS: "DATA_CONVERSION",
    _S.CANCELLED: "TRANSIENT",
    _S.INTERNAL: "INTERNAL",
    _S.UNKNOWN: "UNKNOWN",
    # Domain codes: user exceptions where the IDL declares them, these otherwise.
    _S.NOT_FOUND: "OBJECT_NOT_EXIST",
    _S.ALREADY_EXISTS: "BAD_PARAM",
    _S.ABORTED: "TRANSIENT",
    _S.FAILED_PRECONDITION: "BAD_INV_ORDER",
}
"""gRPC status -> CORBA system exception name."""

SYSTEM_TO_STATUS: Mapping[str, grpc.StatusCode] = {
    "TRANSIENT": _S.UNAVAILABLE,
    "COMM_FAILURE": _S.UNAVAILABLE,
    "OBJECT_NOT_EXIST": _S.UNAVAILABLE,
    "INV_OBJREF": _S.UNAVAILABLE,
    "TIMEOUT": _S.DEADLINE_EXCEEDED,
    "BAD_PARAM": _S.INVALID_ARGUMENT,
    "NO_PERMISSION": _S.PERMISSION_DENIED,
    "NO_IMPLEMENT": _S.UNIMPLEMENTED,
    "BAD_OPERATION": _S.UNIMPLEMENTED,
    "NO_RESOURCES": _S.RESOURCE_EXHAUSTED,
    "IMP_LIMIT": _S.RESOURCE_EXHAUSTED,
    "NO_MEMORY": _S.RESOURCE_EXHAUSTED,
    "DATA_CONVERSION": _S.DATA_LOSS,
    "UNKNOWN": _S.UNKNOWN,
}
"""CORBA system exception name -> gRPC status; any other system exception is INTERNAL."""

_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def system_exception_for_status(code: grpc.StatusCode) -> tuple[str, int]:
    """The system exception name and minor code that stand for ``code``."""
    return STATUS_TO_SYSTEM.get(code, "UNKNOWN"), POWERBUS_VMCID | code.value[0]


def status_for_system_exception(name: str, *, minor: int) -> grpc.StatusCode:
    """The gRPC status for a system exception (exact when powerbus raised it)."""
    if minor & 0xFFFFF000 == POWERBUS_VMCID:
        code = _BY_NUMBER.get(minor & 0xFFF)
        if code is not None:
            return code
    return SYSTEM_TO_STATUS.get(name, _S.INTERNAL)


def corba_exception_for_status(
    code: grpc.StatusCode, details: str, *, user_exceptions: Mapping[str, type] | None = None
) -> Exception:
    """The exception a CORBA servant raises for a failed gRPC call.

    ``user_exceptions`` maps the domain exceptions' names (``"NotFound"``...) to their stub
    classes; a code they cover becomes that exception with ``details`` as its message.
    """
    from omniORB import CORBA

    domain = exception_for_code(code.name)
    if domain is not None and user_exceptions and domain.name in user_exceptions:
        return user_exceptions[domain.name](details)  # type: ignore[no-any-return]
    name, minor = system_exception_for_status(code)
    completed = CORBA.COMPLETED_NO if code is _S.UNAVAILABLE else CORBA.COMPLETED_MAYBE
    return getattr(CORBA, name)(minor, completed)  # type: ignore[no-any-return]


def status_for_corba_exception(
    exc: BaseException, *, user_exceptions: Mapping[str, grpc.StatusCode] | None = None
) -> tuple[grpc.StatusCode, str]:
    """The gRPC status and details for an exception a CORBA call raised.

    ``user_exceptions`` maps user exceptions' repository ids to codes (a legacy system's
    own exceptions); the bus's domain exceptions are known without it.
    """
    from omniORB import CORBA

    if isinstance(exc, CORBA.SystemException):
        name = type(exc).__name__
        code = status_for_system_exception(name, minor=int(exc.minor))
        return code, f"CORBA {name} (minor {exc.minor:#x}, {_completion(exc)})"
    if isinstance(exc, CORBA.UserException):
        repo_id = str(getattr(exc, "_NP_RepositoryId", ""))
        message = str(getattr(exc, "message", "") or repo_id)
        if user_exceptions and repo_id in user_exceptions:
            return user_exceptions[repo_id], message
        for domain in DOMAIN_EXCEPTIONS:
            if repo_id.endswith(f"/{domain.name}:1.0"):
                return getattr(grpc.StatusCode, domain.code), message
        return _S.UNKNOWN, f"CORBA user exception {repo_id}"
    return _S.UNKNOWN, f"{type(exc).__name__}: {exc}"


def error_for_corba_exception(
    exc: BaseException, *, user_exceptions: Mapping[str, grpc.StatusCode] | None = None
) -> PowerbusError:
    """The powerbus error (with its gRPC status) for an exception a CORBA call raised."""
    code, details = status_for_corba_exception(exc, user_exceptions=user_exceptions)
    return error_for_status(code, details)


def error_for_status(code: grpc.StatusCode, details: str) -> PowerbusError:
    """The powerbus error for ``code``; errors about a field name ``request`` when the
    details name none."""
    if code in (_S.INVALID_ARGUMENT, _S.ALREADY_EXISTS) and ": " not in details:
        details = f"request: {details}"
    return error_from_status(StatusCode[code.name], details)


def _completion(exc: Any) -> str:
    from omniORB import CORBA

    return {
        CORBA.COMPLETED_YES: "completed",
        CORBA.COMPLETED_NO: "not completed",
    }.get(exc.completed, "maybe completed")
