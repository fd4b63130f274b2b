"""The simulated bank's own book of what it collected, which its statements are made from.

The bank's view is the truth the utility is reconciled against: a collection whose reply
was lost but which was then resent counts as collected; one that was reversed counts as
collected and reversed (a reversal line nets it out); one refused by the utility counts
as failed; one whose timeout was never resolved stays in progress (在途).

>>> book = BankBook("0102")
>>> t = dt.datetime(2026, 12, 4, 9, 30)
>>> book.collect("B1", "3100012345", 500, t, dt.date(2026, 12, 4), PaymentChannel.BANK_COUNTER)
>>> book.settle("B1", LineStatus.SUCCESS)
>>> [(x.bank_txn_id, x.status.name) for x in book.lines_for(dt.date(2026, 12, 4))]
[('B1', 'SUCCESS')]
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from powerbus.adapters.bank.statement.model import StatementLine
from powerbus.adapters.bank.values import LineKind, LineStatus, PaymentChannel, TxnState

__all__ = ["BankBook", "BankTxn"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BankTxn:
    serial: str
    account_id: str
    amount: int
    at: dt.datetime
    settlement_date: dt.date
    channel: PaymentChannel
    status: LineStatus = LineStatus.PROCESSING
    reversal_serial: str = ""
    reversed_at: dt.datetime | None = None


class BankBook:
    """Collections by serial, in the order they happened."""

    def __init__(self, bank_code: str) -> None:
        self.bank_code = bank_code
        self._txns: dict[str, BankTxn] = {}

    def __len__(self) -> int:
        return len(self._txns)

    def collect(
        self,
        serial: str,
        account_id: str,
        amount: int,
        at: dt.datetime,
        settlement_date: dt.date,
        channel: PaymentChannel,
    ) -> None:
        """A collection starts (in progress until settled)."""
        self._txns[serial] = BankTxn(
            serial=serial,
            account_id=account_id,
            amount=amount,
            at=at,
            settlement_date=settlement_date,
            channel=channel,
        )

    def settle(self, serial: str, status: LineStatus) -> None:
        self._txns[serial] = replace(self._txns[serial], status=status)

    def reverse(self, serial: str, reversal_serial: str, at: dt.datetime) -> None:
        """The collection was reversed (冲正) and the utility acknowledged it."""
        self._txns[serial] = replace(
            self._txns[serial],
            status=LineStatus.SUCCESS,
            reversal_serial=reversal_serial,
            reversed_at=at,
        )

    def get(self, serial: str) -> BankTxn | None:
        return self._txns.get(serial)

    def state(self, serial: str) -> TxnState:
        """What a status query about ``serial`` is answered."""
        txn = self._txns.get(serial)
        if txn is None:
            return TxnState.NOT_FOUND
        if txn.reversal_serial:
            return TxnState.REVERSED
        return {LineStatus.SUCCESS: TxnState.SUCCESS, LineStatus.FAILED: TxnState.FAILED}.get(
            txn.status, TxnState.PROCESSING
        )

    def dates(self) -> list[dt.date]:
        return sorted({t.settlement_date for t in self._txns.values()})

    def lines_for(self, day: dt.date) -> list[StatementLine]:
        """The statement lines of settlement date ``day``: each collection, and a reversal
        line after it when it was reversed."""
        out: list[StatementLine] = []
        for txn in self._txns.values():
            if txn.settlement_date != day:
                continue
            out.append(
                StatementLine(
                    line_number=len(out) + 2,
                    bank_txn_id=txn.serial,
                    account_id=txn.account_id,
                    amount=txn.amount,
                    kind=LineKind.COLLECTION,
                    status=txn.status,
                    txn_time=txn.at,
                    channel=txn.channel,
                )
            )
            if txn.reversal_serial and txn.reversed_at is not None:
                out.append(
                    StatementLine(
                        line_number=len(out) + 2,
                        bank_txn_id=txn.reversal_serial,
                        account_id=txn.account_id,
                        amount=txn.amount,
                        kind=LineKind.REVERSAL,
                        status=LineStatus.SUCCESS,
                        txn_time=txn.reversed_at,
                        channel=txn.channel,
                        original_txn_id=txn.serial,
                        memo="冲正",
                    )
                )
        return out
