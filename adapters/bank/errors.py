"""Errors of the bank adapter, under the kernel's :class:`PowerbusError` tree.

::

    PowerbusError
    ├── InvalidArgument
    │   ├── ProtocolError            a bank message is malformed; names the field and offset
    │   │   ├── FramingError         the ASCII length header is not a length
    │   │   ├── TruncatedMessage     the peer stopped before the frame or field ended
    │   │   ├── MacMismatch          the MAC does not verify under the bank's key
    │   │   └── EncodingError        a text field is not valid GBK
    │   └── FileFormatError          a statement or withholding line is malformed; names
    │                                the file and its 1-based line number
    ├── FailedPrecondition           (the kernel's) the request is well formed but the state
    │                                forbids it (account closed, already reversed, no file)
    └── DataLoss                     (the kernel's)
        └── FileDataLoss             a file's control totals disagree with its lines, or a
                                     download is corrupt: the whole file is refused

Network failures use the kernel's ``Unavailable`` (retriable) and ``DeadlineExceeded``.
None of these is retriable except those two: a malformed message stays malformed.
"""

from __future__ import annotations

from powerbus.bus.kernel.errors import DataLoss, FailedPrecondition, InvalidArgument

__all__ = [
    "DataLoss",
    "EncodingError",
    "FailedPrecondition",
    "FileDataLoss",
    "FileFormatError",
    "FramingError",
    "MacMismatch",
    "ProtocolError",
    "TruncatedMessage",
]


class ProtocolError(InvalidArgument):
    """A bank message is malformed.

    ``field`` names what was wrong (``length``, ``mac``, a body field such as
    ``amount``) and ``offset`` is its byte offset in the message body (-1 when unknown).

    >>> str(ProtocolError("amount", 57, "not digits: b'12x4'"))
    "amount: at byte 57: not digits: b'12x4'"
    """

    def __init__(self, field: str, offset: int, problem: str) -> None:
        where = f"at byte {offset}: " if offset >= 0 else ""
        super().__init__(field, f"{where}{problem}")
        self.offset = offset


class FramingError(ProtocolError):
    """The length header is not a decimal length within bounds; the stream cannot be
    resynchronised after it, so the connection is answered once and closed."""


class TruncatedMessage(ProtocolError):
    """The frame or a field ends before its declared length."""


class MacMismatch(ProtocolError):
    """The message authentication code does not verify under the bank's key."""


class EncodingError(ProtocolError):
    """A text field holds bytes that are not GBK."""


class FileFormatError(InvalidArgument):
    """A line of a statement or withholding file is malformed.

    >>> str(FileFormatError("0102_COLLECTION_20240501.txt", 7, "amount: not digits"))
    '0102_COLLECTION_20240501.txt:7: amount: not digits'
    """

    def __init__(self, file: str, line: int, problem: str) -> None:
        super().__init__(f"{file}:{line}", problem)
        self.file = file
        self.line = line
        self.message = f"{file}:{line}: {problem}"
        self.args = (self.message,)


class FileDataLoss(DataLoss):
    """A file's control totals disagree with its lines, or its download is corrupt;
    nothing of it is applied. Names the file."""

    def __init__(self, file: str, problem: str) -> None:
        super().__init__(f"{file}: {problem}")
        self.file = file
