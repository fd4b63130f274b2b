"""The one table between powerbus errors and the protocol's response codes (响应码).

A server turns the error its handler raised into a code and text; a client turns a code
back into the error, so the node sees the same tree on both sides of the wire.

>>> code_for(NotFound("account 31 unknown"))
<RespCode.ACCOUNT_NOT_FOUND: '1001'>
>>> type(error_for(RespCode.UNAVAILABLE, "payments down")).__name__
'Unavailable'
"""

from __future__ import annotations

from powerbus.adapters.bank.errors import FailedPrecondition, MacMismatch, ProtocolError
from powerbus.adapters.bank.protocol.messages import RespCode
from powerbus.bus.kernel.errors import (
    AlreadyExists,
    DeadlineExceeded,
    InvalidArgument,
    NotFound,
    PowerbusError,
    Unavailable,
    Unimplemented,
)

__all__ = ["code_for", "error_for"]

# Most specific first: MacMismatch is a ProtocolError is an InvalidArgument.
_TO_CODE: tuple[tuple[type[PowerbusError], RespCode], ...] = (
    (MacMismatch, RespCode.MAC_ERROR),
    (ProtocolError, RespCode.FORMAT_ERROR),
    (InvalidArgument, RespCode.FORMAT_ERROR),
    (NotFound, RespCode.ACCOUNT_NOT_FOUND),
    (AlreadyExists, RespCode.SERIAL_CONFLICT),
    (FailedPrecondition, RespCode.REFUSED),
    (Unimplemented, RespCode.UNSUPPORTED),
    (Unavailable, RespCode.UNAVAILABLE),
    (DeadlineExceeded, RespCode.TIMEOUT),
)


def code_for(error: BaseException) -> RespCode:
    """The response code that reports ``error`` (``SYSTEM_ERROR`` for anything unknown)."""
    if isinstance(error, InvalidArgument) and error.field == "bank_code":
        return RespCode.WRONG_BANK
    for kind, code in _TO_CODE:
        if isinstance(error, kind):
            return code
    return RespCode.SYSTEM_ERROR


def error_for(code: RespCode, text: str) -> PowerbusError:
    """The error a reply with ``code`` and ``text`` stands for."""
    said = f"bank replied {code.value}: {text}"
    if code is RespCode.MAC_ERROR:
        return MacMismatch("mac", -1, said)
    if code in (RespCode.FORMAT_ERROR, RespCode.WRONG_BANK):
        return ProtocolError("message", -1, said)
    if code is RespCode.ACCOUNT_NOT_FOUND:
        return NotFound(said)
    if code is RespCode.SERIAL_CONFLICT:
        return AlreadyExists("serial", said)
    if code in (RespCode.ACCOUNT_CLOSED, RespCode.REFUSED):
        return FailedPrecondition(said)
    if code is RespCode.UNSUPPORTED:
        return Unimplemented(said)
    if code is RespCode.UNAVAILABLE:
        return Unavailable(said)
    if code is RespCode.TIMEOUT:
        return DeadlineExceeded(said)
    return PowerbusError(said)
