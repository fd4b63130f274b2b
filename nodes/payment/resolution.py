"""Resolving reconciliation differences (差错处理): which action fits which item, and what
the ledger then writes. Pure: an item of a stored report and an operator's action in, a
:class:`ResolutionPlan` out, or an error naming what does not fit.

==============  ==========================================  =============================
action          fits                                        the ledger writes
==============  ==========================================  =============================
POST            ONLY_IN_BANK collection (bank SUCCESS)      the collection, from the line
REVERSE         ONLY_IN_SYSTEM, STATUS_DIFF, payment POSTED a reversal of the payment
WRITE_OFF       any difference that moved money             bank clearing ↔ write-off
==============  ==========================================  =============================

A write-off moves the bank's side minus the ledger's, counting money that moved as the
report's totals do (a SUCCESS line, a POSTED payment); a reversal line whose collection
was never posted counts as money the bank took back.

>>> report_id("0102", dt.date(2026, 12, 4))
'0102-20261204'
>>> parse_report_id("0102-20261204")
('0102', datetime.date(2026, 12, 4))
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from powerbus.adapters.bank import (
    Category,
    ItemResolution,
    LineStatus,
    PaymentChannel,
    PaymentStatus,
    ReconciliationItem,
    ResolutionAction,
)
from powerbus.bus.kernel.errors import FailedPrecondition, InvalidArgument
from powerbus.nodes.payment.store.records import PostRequest, ReversalRequest

__all__ = [
    "ItemKey",
    "Known",
    "ResolutionPlan",
    "describe",
    "known_of",
    "parse_report_id",
    "plan",
    "report_id",
]

_REPORT_ID = re.compile(r"^([0-9A-Za-z]{1,8})-(\d{8})$")
_QUIET = (Category.MATCHED, Category.IN_TRANSIT)
_MAX_OPERATOR = 64
_MAX_REASON = 200


def report_id(bank_code: str, day: dt.date) -> str:
    """The id of the stored report of ``bank_code``'s settlement date ``day``."""
    return f"{bank_code}-{day:%Y%m%d}"


def parse_report_id(text: str) -> tuple[str, dt.date]:
    """``report_id`` back to (bank code, settlement date); INVALID_ARGUMENT if malformed."""
    found = _REPORT_ID.match(text)
    if found is None:
        raise InvalidArgument("report_id", f"{text!r} is not <bank>-<YYYYMMDD>, e.g. 0102-20261204")
    try:
        day = dt.datetime.strptime(found.group(2), "%Y%m%d").date()
    except ValueError:
        raise InvalidArgument("report_id", f"{text!r}: {found.group(2)} is no date") from None
    return found.group(1), day


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemKey:
    """A report item as stored resolutions name it: stable across reruns of a statement
    (its serial and line; line 0 for an item only the ledger has)."""

    bank_code: str
    settlement_date: dt.date
    bank_txn_id: str
    line_number: int


@dataclass(frozen=True, slots=True)
class Known:
    """A serial's payment as a report saw it."""

    payment_id: str
    amount: int
    status: PaymentStatus


def known_of(items: Iterable[ReconciliationItem], serial: str) -> Known | None:
    """The payment of ``serial`` as the report's ``items`` show it, if any shows one."""
    for item in items:
        if item.bank_txn_id == serial and item.payment_id and item.system_status is not None:
            return Known(item.payment_id, item.system_amount or 0, item.system_status)
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolutionPlan:
    """What resolving one item writes, checked against the item; the store carries it
    out in one transaction with the resolution row."""

    key: ItemKey
    item_number: int
    category: Category
    action: ResolutionAction
    operator: str
    reason: str
    post: PostRequest | None = None  # POST
    reversal: ReversalRequest | None = None  # REVERSE
    write_off: int = 0  # WRITE_OFF: fen, bank side minus ledger side
    payment_id: str = ""  # the serial's payment as the report knew it, if any
    # The serial's payment as the report saw it (amount, status), None when it had none;
    # the store refuses to act when that changed since (the report is stale: reconcile
    # again), so nothing is posted, reversed or written off twice over.
    expected: tuple[int, PaymentStatus] | None = None

    def label(self) -> str:
        """The item in messages: its number, serial and line."""
        where = f"line {self.key.line_number}" if self.key.line_number else "ledger only"
        return f"item {self.item_number} (bank txn {self.key.bank_txn_id}, {where})"


def plan(
    bank_code: str,
    day: dt.date,
    item: ReconciliationItem,
    action: ResolutionAction,
    *,
    operator: str,
    reason: str,
    known: Known | None = None,
) -> ResolutionPlan:
    """Check that ``action`` fits ``item`` and say what it writes. ``known`` is the
    serial's payment as the report saw it, when another item of the report shows it (a
    serial the bank listed twice); by default the item's own."""
    operator, reason = operator.strip(), reason.strip()
    if not operator:
        raise InvalidArgument("operator", "must name who resolves the item")
    if len(operator) > _MAX_OPERATOR:
        raise InvalidArgument("operator", f"at most {_MAX_OPERATOR} characters")
    if not reason:
        raise InvalidArgument("reason", "must say why (it is the journal's memo)")
    if len(reason) > _MAX_REASON:
        raise InvalidArgument("reason", f"at most {_MAX_REASON} characters, got {len(reason)}")
    key = ItemKey(
        bank_code=bank_code,
        settlement_date=day,
        bank_txn_id=item.bank_txn_id,
        line_number=item.line_number,
    )
    if known is None and item.system_amount is not None and item.system_status is not None:
        known = Known(item.payment_id, item.system_amount, item.system_status)
    base = ResolutionPlan(
        key=key,
        item_number=item.item_number,
        category=item.category,
        action=action,
        operator=operator,
        reason=reason,
        payment_id=known.payment_id if known else "",
        expected=(known.amount, known.status) if known else None,
    )
    if item.category in _QUIET:
        raise FailedPrecondition(
            f"{base.label()} is {item.category.value}, not a difference: nothing to resolve"
        )
    if action is ResolutionAction.POST:
        return _post(base, item)
    if action is ResolutionAction.REVERSE:
        return _reverse(base, item)
    return _write_off(base, item)


def _post(base: ResolutionPlan, item: ReconciliationItem) -> ResolutionPlan:
    fits = (
        item.category is Category.ONLY_IN_BANK
        and item.bank_status is LineStatus.SUCCESS
        and item.bank_amount is not None
        and item.bank_time is not None
    )
    if not fits or item.bank_amount is None or item.bank_time is None:
        raise FailedPrecondition(
            f"POST fits a collection only the bank has (ONLY_IN_BANK, SUCCESS); "
            f"{base.label()} is {item.category.value}: {item.detail}"
        )
    channel = item.channel or PaymentChannel.BANK_COUNTER
    request = PostRequest(
        bank_code=base.key.bank_code,
        bank_txn_id=item.bank_txn_id,
        account_id=item.account_id,
        amount=item.bank_amount,
        channel=f"PAYMENT_CHANNEL_{channel.name}",
        paid_at=item.bank_time,
        settlement_date=base.key.settlement_date,
    )
    return replace(base, post=request)


def _reverse(base: ResolutionPlan, item: ReconciliationItem) -> ResolutionPlan:
    fits = (
        item.category in (Category.ONLY_IN_SYSTEM, Category.STATUS_DIFF)
        and item.system_status is PaymentStatus.POSTED
        and bool(item.payment_id)
    )
    if not fits:
        raise FailedPrecondition(
            f"REVERSE fits a payment posted here that the bank does not have or reversed "
            f"(ONLY_IN_SYSTEM or STATUS_DIFF, POSTED); {base.label()} is "
            f"{item.category.value}: {item.detail}"
        )
    request = ReversalRequest(
        reversal_txn_id=_reversal_serial(base.key),
        payment_id=item.payment_id,
        amount=item.system_amount,
        reason=f"对账 {report_id(base.key.bank_code, base.key.settlement_date)}: {base.reason}",
    )
    return replace(base, reversal=request)


def _write_off(base: ResolutionPlan, item: ReconciliationItem) -> ResolutionPlan:
    amount = bank_side(item) - (
        item.system_amount or 0 if item.system_status is PaymentStatus.POSTED else 0
    )
    if amount == 0:
        raise FailedPrecondition(
            f"{base.label()} moved the same money on both sides: nothing to write off"
        )
    return replace(base, write_off=amount)


def bank_side(item: ReconciliationItem) -> int:
    """What the bank's side of ``item`` moved, fen (the report's totals' convention, and
    a reversal of a collection the ledger never had as money taken back)."""
    amount = item.bank_amount or 0
    if item.bank_status is LineStatus.SUCCESS:
        return amount
    if item.category is Category.ONLY_IN_BANK and item.bank_status is LineStatus.REVERSED:
        return -amount
    return 0


def describe(done: ItemResolution) -> str:
    """A resolution in one line, for messages."""
    txns = ", ".join(str(t) for t in done.ledger_txn_ids) or "none"
    when = done.resolved_at.astimezone(dt.timezone.utc)
    return (
        f"{done.action.value} by {done.operator} at {when:%Y-%m-%d %H:%M:%S} UTC"
        f" (ledger txn {txns}): {done.reason}"
    )


def _reversal_serial(key: ItemKey) -> str:
    # Deterministic, so a retried resolve names the same reversal (and the store's
    # reversal idempotency catches it); prefixed so it is never a bank's serial.
    text = f"{key.bank_code}\x00{key.settlement_date}\x00{key.bank_txn_id}\x00{key.line_number}"
    return "OPR" + hashlib.sha256(text.encode()).hexdigest()[:29]
