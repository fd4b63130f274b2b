"""The bank protocol's messages: a common header, then a body per transaction code.

============  =====================  =====================================  ==========
txn code      name                   request (``Q``) → reply (``A``)        initiator
============  =====================  =====================================  ==========
``1001``      查询欠费 arrears query  :class:`ArrearsQuery` → :class:`ArrearsReply`    bank
``1002``      缴费 payment           :class:`PaymentRequest` → :class:`PaymentReply`  bank
``1003``      冲正 reversal          :class:`ReversalRequest` → :class:`ReversalReply` bank
``1004``      交易状态查询 status    :class:`StatusQuery` → :class:`StatusReply`      either
``1005``      对账文件下载 statement :class:`StatementRequest` → :class:`StatementChunk` utility
============  =====================  =====================================  ==========

A reply whose ``resp_code`` is not ``0000`` carries no body: the header's code and text
say what went wrong (:mod:`.codes`).

>>> body = PaymentRequest(account_id="3100012345", amount=12345,
...                       channel=PaymentChannel.BANK_COUNTER,
...                       settlement_date=dt.date(2026, 12, 4))
>>> body.TXN_CODE, body.IS_REPLY
(<TxnCode.PAYMENT: '1002'>, False)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import Enum
from typing import ClassVar

from powerbus.adapters.bank.protocol.fields import Field, Kind
from powerbus.adapters.bank.values import PaymentChannel, ReverseOutcome, TxnState

__all__ = [
    "HEADER_LAYOUT",
    "ArrearsQuery",
    "ArrearsReply",
    "Body",
    "Header",
    "Message",
    "MsgType",
    "PaymentReply",
    "PaymentRequest",
    "RespCode",
    "ReversalReply",
    "ReversalRequest",
    "StatementChunk",
    "StatementRequest",
    "StatusQuery",
    "StatusReply",
    "TxnCode",
    "body_type",
]


class TxnCode(str, Enum):
    """Transaction codes (交易码)."""

    ARREARS_QUERY = "1001"
    PAYMENT = "1002"
    REVERSAL = "1003"
    STATUS_QUERY = "1004"
    STATEMENT = "1005"


class MsgType(str, Enum):
    REQUEST = "Q"
    REPLY = "A"


class RespCode(str, Enum):
    """Response codes (响应码); :mod:`.codes` maps them to and from powerbus errors."""

    OK = "0000"
    ACCOUNT_NOT_FOUND = "1001"
    ACCOUNT_CLOSED = "1002"
    SERIAL_CONFLICT = "2001"  # serial reused with another account or amount
    REFUSED = "2002"  # state forbids it: already reversed, amount differs, no file yet
    FORMAT_ERROR = "9001"
    MAC_ERROR = "9002"
    UNSUPPORTED = "9003"
    WRONG_BANK = "9004"
    UNAVAILABLE = "9098"  # try again later: resend or reverse
    TIMEOUT = "9099"
    SYSTEM_ERROR = "9999"


# The header every message starts with (87 bytes); the MAC (32 hex) closes every message.
HEADER_LAYOUT: tuple[Field, ...] = (
    Field("txn_code", 4, Kind.CODE, TxnCode),
    Field("msg_type", 1, Kind.CODE, MsgType),
    Field("bank_code", 4),
    Field("serial", 20),
    Field("sent_at", 14, Kind.TIMESTAMP),
    Field("resp_code", 4, Kind.CODE, RespCode),
    Field("resp_msg", 40, Kind.TEXT),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    """Who sends what: ``serial`` is the request's serial (流水号), echoed in its reply."""

    txn_code: TxnCode
    msg_type: MsgType
    bank_code: str
    serial: str
    sent_at: dt.datetime
    resp_code: RespCode = RespCode.OK
    resp_msg: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ArrearsQuery:
    """查询欠费: what does the account owe?"""

    TXN_CODE: ClassVar[TxnCode] = TxnCode.ARREARS_QUERY
    IS_REPLY: ClassVar[bool] = False
    LAYOUT: ClassVar[tuple[Field, ...]] = (Field("account_id", 20),)
    account_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ArrearsReply:
    """What the account owes; ``total_due`` = principal + late fee - credit, at least 0."""

    TXN_CODE: ClassVar[TxnCode] = TxnCode.ARREARS_QUERY
    IS_REPLY: ClassVar[bool] = True
    LAYOUT: ClassVar[tuple[Field, ...]] = (
        Field("account_id", 20),
        Field("customer_name", 20, Kind.TEXT),
        Field("total_due", 14, Kind.AMOUNT),
        Field("principal", 14, Kind.AMOUNT),
        Field("late_fee", 14, Kind.AMOUNT),
        Field("credit_balance", 14, Kind.AMOUNT),
        Field("bill_count", 3, Kind.NUMBER),
    )
    account_id: str
    customer_name: str  # masked, e.g. "张*"
    total_due: int
    principal: int
    late_fee: int
    credit_balance: int
    bill_count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentRequest:
    """缴费: the bank collected ``amount`` fen for the account; the header serial is the key."""

    TXN_CODE: ClassVar[TxnCode] = TxnCode.PAYMENT
    IS_REPLY: ClassVar[bool] = False
    LAYOUT: ClassVar[tuple[Field, ...]] = (
        Field("account_id", 20),
        Field("amount", 14, Kind.AMOUNT),
        Field("channel", 1, Kind.CODE, PaymentChannel),
        Field("settlement_date", 8, Kind.DATE),
    )
    account_id: str
    amount: int
    channel: PaymentChannel
    settlement_date: dt.date


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentReply:
    """The payment as posted; ``duplicate`` when the serial was already posted."""

    TXN_CODE: ClassVar[TxnCode] = TxnCode.PAYMENT
    IS_REPLY: ClassVar[bool] = True
    LAYOUT: ClassVar[tuple[Field, ...]] = (
        Field("account_id", 20),
        Field("amount", 14, Kind.AMOUNT),
        Field("payment_id", 32),
        Field("remaining_due", 14, Kind.AMOUNT),
        Field("duplicate", 1, Kind.FLAG),
    )
    account_id: str
    amount: int
    payment_id: str
    remaining_due: int
    duplicate: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ReversalRequest:
    """冲正: undo the payment whose serial is ``original_serial``; the header serial is this
    reversal's own key."""

    TXN_CODE: ClassVar[TxnCode] = TxnCode.REVERSAL
    IS_REPLY: ClassVar[bool] = False
    LAYOUT: ClassVar[tuple[Field, ...]] = (
        Field("original_serial", 20),
        Field("amount", 14, Kind.AMOUNT),
        Field("reason", 30, Kind.TEXT),
    )
    original_serial: str
    amount: int
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReversalReply:
    TXN_CODE: ClassVar[TxnCode] = TxnCode.REVERSAL
    IS_REPLY: ClassVar[bool] = True
    LAYOUT: ClassVar[tuple[Field, ...]] = (
        Field("original_serial", 20),
        Field("outcome", 1, Kind.CODE, ReverseOutcome),
        Field("payment_id", 32),
        Field("duplicate", 1, Kind.FLAG),
    )
    original_serial: str
    outcome: ReverseOutcome
    payment_id: str = ""
    duplicate: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusQuery:
    """交易状态查询: what became of the transaction ``target_serial`` of ``txn_date``?"""

    TXN_CODE: ClassVar[TxnCode] = TxnCode.STATUS_QUERY
    IS_REPLY: ClassVar[bool] = False
    LAYOUT: ClassVar[tuple[Field, ...]] = (
        Field("target_serial", 20),
        Field("txn_date", 8, Kind.DATE),
    )
    target_serial: str
    txn_date: dt.date


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusReply:
    TXN_CODE: ClassVar[TxnCode] = TxnCode.STATUS_QUERY
    IS_REPLY: ClassVar[bool] = True
    LAYOUT: ClassVar[tuple[Field, ...]] = (
        Field("target_serial", 20),
        Field("state", 1, Kind.CODE, TxnState),
        Field("account_id", 20),
        Field("amount", 14, Kind.AMOUNT),
    )
    target_serial: str
    state: TxnState
    account_id: str = ""
    amount: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class StatementRequest:
    """对账文件下载: the statement of ``settlement_date`` from byte ``offset`` on."""

    TXN_CODE: ClassVar[TxnCode] = TxnCode.STATEMENT
    IS_REPLY: ClassVar[bool] = False
    LAYOUT: ClassVar[tuple[Field, ...]] = (
        Field("settlement_date", 8, Kind.DATE),
        Field("offset", 10, Kind.NUMBER),
    )
    settlement_date: dt.date
    offset: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class StatementChunk:
    """Part of a statement file: ``data`` is the file's bytes from ``offset``; the client
    asks again from ``offset + len(data)`` until it has ``file_size`` bytes, then checks
    ``sha256``. ``data`` travels after the fixed fields with its own 6-digit length."""

    TXN_CODE: ClassVar[TxnCode] = TxnCode.STATEMENT
    IS_REPLY: ClassVar[bool] = True
    LAYOUT: ClassVar[tuple[Field, ...]] = (
        Field("settlement_date", 8, Kind.DATE),
        Field("file_name", 40),
        Field("file_size", 10, Kind.NUMBER),
        Field("sha256", 64),
        Field("offset", 10, Kind.NUMBER),
    )
    settlement_date: dt.date
    file_name: str
    file_size: int
    sha256: str
    offset: int
    data: bytes = field(default=b"", repr=False)


Body = (
    ArrearsQuery
    | ArrearsReply
    | PaymentRequest
    | PaymentReply
    | ReversalRequest
    | ReversalReply
    | StatusQuery
    | StatusReply
    | StatementRequest
    | StatementChunk
)

_BODIES: dict[tuple[TxnCode, bool], type[Body]] = {
    (cls.TXN_CODE, cls.IS_REPLY): cls
    for cls in (
        ArrearsQuery,
        ArrearsReply,
        PaymentRequest,
        PaymentReply,
        ReversalRequest,
        ReversalReply,
        StatusQuery,
        StatusReply,
        StatementRequest,
        StatementChunk,
    )
}


def body_type(txn_code: TxnCode, msg_type: MsgType) -> type[Body]:
    """The body class of a transaction code and direction."""
    return _BODIES[(txn_code, msg_type is MsgType.REPLY)]


@dataclass(frozen=True, slots=True)
class Message:
    """One protocol message; ``body`` is None on a reply that reports an error."""

    header: Header
    body: Body | None

    @property
    def ok(self) -> bool:
        return self.header.resp_code is RespCode.OK
