"""Values that cross the wire, the files and the reports, as ``str`` enums.

Names follow ``powerbus.payment.v1`` (``PaymentChannel.BANK_COUNTER`` is
``PAYMENT_CHANNEL_BANK_COUNTER``); values are what the bank protocol and the files carry.

>>> PaymentChannel("2").name
'BANK_WITHHOLDING'
>>> format_fen(-123456)
'-1234.56'
"""

from __future__ import annotations

from enum import Enum

__all__ = [
    "Category",
    "LineKind",
    "LineStatus",
    "PaymentChannel",
    "PaymentStatus",
    "ResolutionAction",
    "ReverseOutcome",
    "TxnState",
    "format_fen",
]


class PaymentChannel(str, Enum):
    """Where the customer paid; the value is the proto enum number, one wire character."""

    UNSPECIFIED = "0"
    BANK_COUNTER = "1"
    BANK_WITHHOLDING = "2"
    ONLINE_BANKING = "3"
    THIRD_PARTY = "4"
    UTILITY_COUNTER = "5"
    UTILITY_APP = "6"


class PaymentStatus(str, Enum):
    """Whether a posted payment counts (ledger side)."""

    POSTED = "POSTED"
    REVERSED = "REVERSED"


class LineStatus(str, Enum):
    """A statement line's status as the bank states it."""

    SUCCESS = "S"
    FAILED = "F"
    # 在途: not final at the bank yet.
    PROCESSING = "P"
    # Collected and reversed the same day.
    REVERSED = "R"


class LineKind(str, Enum):
    """Which way a statement line moves money."""

    COLLECTION = "C"
    REVERSAL = "R"


class ReverseOutcome(str, Enum):
    """What a reversal (冲正) did."""

    REVERSED = "1"
    ORIGINAL_NOT_FOUND = "2"


class TxnState(str, Enum):
    """A transaction's state as a status query (交易状态查询) answers it."""

    SUCCESS = "S"
    FAILED = "F"
    REVERSED = "R"
    PROCESSING = "P"
    NOT_FOUND = "N"


class Category(str, Enum):
    """How one transaction compares between statement and ledger (``ReconciliationCategory``)."""

    MATCHED = "MATCHED"
    AMOUNT_DIFF = "AMOUNT_DIFF"
    STATUS_DIFF = "STATUS_DIFF"
    # 长款 / 银行单边账: the bank has money we did not record.
    ONLY_IN_BANK = "ONLY_IN_BANK"
    # 短款 / 系统单边账: posted here, not in the bank's statement.
    ONLY_IN_SYSTEM = "ONLY_IN_SYSTEM"
    # 在途: expected on a later statement, not a difference.
    IN_TRANSIT = "IN_TRANSIT"


class ResolutionAction(str, Enum):
    """What an operator did about a reconciliation difference (``ResolutionAction``)."""

    # 补记: post the collection the bank has and the ledger lacks.
    POST = "POST"
    # 冲正: reverse the payment posted here.
    REVERSE = "REVERSE"
    # 核销: write the difference off, with a reason.
    WRITE_OFF = "WRITE_OFF"


def format_fen(fen: int) -> str:
    """Fen as yuan text with two decimals, exactly (no float on the way)."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}{yuan}.{cents:02d}"
