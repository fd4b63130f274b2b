"""The double-entry ledger's rules, pure: the chart of accounts and the postings of each
business event. The store writes what these functions return; nothing here touches a
database, so the rules are tested as plain values.

Chart of accounts (``book:key``)::

    bank_clearing:{bank}     asset      money a bank collected for us, until it settles
    suspense:{account}       liability  received, not yet applied to bills (billing down)
    receivable:{account}     asset      what customers owe; payments applied credit it
    prepaid:{account}        liability  预存 credit: paid beyond the bills
    late_fee_income          income     违约金 (billing's allocations do not split it yet)
    refunds:{account}        liability  money to pay back to a customer
    write_off                expense    differences an operator wrote off, with a reason

A collection: Dr bank_clearing, Cr suspense. Its application: Dr suspense, Cr
receivable (allocated) and Cr prepaid (the rest). A reversal: the opposite of every line
the payment posted so far, so its net is zero on every account.

>>> p = collection(bank_code="0102", account_id="3100000001", amount=500)
>>> [(l.account, l.debit, l.credit) for l in p.lines]
[('bank_clearing:0102', 500, 0), ('suspense:3100000001', 0, 500)]
>>> [(l.account, l.debit, l.credit) for l in reversing(p.lines, kind=Kind.REVERSAL).lines]
[('bank_clearing:0102', 0, 500), ('suspense:3100000001', 500, 0)]
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from powerbus.bus.kernel.errors import InvalidArgument

__all__ = [
    "Book",
    "Kind",
    "Line",
    "Posting",
    "account",
    "application",
    "collection",
    "net_by_account",
    "reversing",
    "write_off",
]


class Book(str, Enum):
    """The ledger's books; an account is a book and, for most, a key."""

    BANK_CLEARING = "bank_clearing"
    SUSPENSE = "suspense"
    RECEIVABLE = "receivable"
    PREPAID = "prepaid"
    LATE_FEE_INCOME = "late_fee_income"
    REFUNDS = "refunds"
    WRITE_OFF = "write_off"


class Kind(str, Enum):
    """What a journal transaction records."""

    COLLECTION = "COLLECTION"
    APPLICATION = "APPLICATION"
    REVERSAL = "REVERSAL"
    WRITE_OFF = "WRITE_OFF"


def account(book: Book, key: str = "") -> str:
    """The ledger account of ``book`` for ``key`` (a bank code or customer account)."""
    name = _BOOK_NAMES[book]  # not book.value: see _COLLECTION
    return f"{name}:{key}" if key else name


_BOOK_NAMES = {book: book.value for book in Book}


@dataclass(frozen=True, slots=True)
class Line:
    """One side of one account in a transaction, fen; exactly one of debit/credit > 0."""

    account: str
    debit: int = 0
    credit: int = 0


@dataclass(frozen=True, slots=True)
class Posting:
    """A balanced journal transaction: refused at construction unless debits = credits."""

    kind: Kind
    lines: tuple[Line, ...]

    def __post_init__(self) -> None:
        debits = credits = 0
        for line in self.lines:
            debit, credit = line.debit, line.credit
            if debit < 0 or credit < 0 or (debit and credit):
                raise InvalidArgument("lines", f"{line} must have one positive side")
            if not (debit or credit):
                raise InvalidArgument("lines", f"{line} moves nothing")
            debits += debit
            credits += credit
        if debits != credits:
            raise InvalidArgument(
                "lines", f"{self.kind.value}: debits {debits} ≠ credits {credits}"
            )


def collection(*, bank_code: str, account_id: str, amount: int) -> Posting:
    """Money the bank took for ``account_id``, held in suspense until applied."""
    _positive(amount)
    return Posting(
        _COLLECTION,
        (
            Line(f"{_CLEARING}:{bank_code}", debit=amount),
            Line(f"{_SUSPENSE}:{account_id}", credit=amount),
        ),
    )


# The hot path's members and names, read once: on Python 3.11 reading an Enum member off
# its class, like its ``.value``, is a descriptor call, and batches post 20,000 a second.
_COLLECTION = Kind.COLLECTION
_CLEARING = Book.BANK_CLEARING.value
_SUSPENSE = Book.SUSPENSE.value


def application(*, account_id: str, allocated: int, unallocated: int) -> Posting:
    """Billing applied a payment: ``allocated`` paid bills, ``unallocated`` became credit."""
    if allocated < 0 or unallocated < 0 or allocated + unallocated <= 0:
        raise InvalidArgument("allocations", f"allocated {allocated}, unallocated {unallocated}")
    lines = [Line(account(Book.SUSPENSE, account_id), debit=allocated + unallocated)]
    if allocated:
        lines.append(Line(account(Book.RECEIVABLE, account_id), credit=allocated))
    if unallocated:
        lines.append(Line(account(Book.PREPAID, account_id), credit=unallocated))
    return Posting(Kind.APPLICATION, tuple(lines))


def write_off(*, bank_code: str, amount: int) -> Posting:
    """An operator writes a bank difference off: a positive amount the bank holds that we
    cannot place (长款) is income-side, a negative one (短款) an expense."""
    if amount == 0:
        raise InvalidArgument("amount", "a write-off must move money")
    clearing = account(Book.BANK_CLEARING, bank_code)
    loss = account(Book.WRITE_OFF)
    if amount > 0:
        lines = (Line(clearing, debit=amount), Line(loss, credit=amount))
    else:
        lines = (Line(loss, debit=-amount), Line(clearing, credit=-amount))
    return Posting(Kind.WRITE_OFF, lines)


def net_by_account(lines: Iterable[Line]) -> dict[str, int]:
    """Debit minus credit per account, leaving out accounts that net to zero."""
    net: dict[str, int] = defaultdict(int)
    for line in lines:
        net[line.account] += line.debit - line.credit
    return {name: value for name, value in sorted(net.items()) if value}


def reversing(lines: Iterable[Line], *, kind: Kind) -> Posting:
    """The transaction that undoes ``lines`` (everything a payment posted so far)."""
    undo = tuple(
        Line(name, debit=-value) if value < 0 else Line(name, credit=value)
        for name, value in net_by_account(lines).items()
    )
    return Posting(kind, undo)


def _positive(amount: int) -> None:
    if amount <= 0:
        raise InvalidArgument("amount", f"must be positive fen, got {amount}")
