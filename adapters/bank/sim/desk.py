"""The bank's withholding desk (代扣): turns batch debit files into result files.

It watches ``<drop>/withholding/in`` for ``WH_*.txt``, debits each customer (a seeded
share fail, as with an empty account), records the successes in the bank's book, writes
``WHR_*.txt`` into ``<drop>/withholding/out`` and renames the batch ``*.done``. A batch
file that is malformed or whose totals disagree is renamed ``*.rejected`` with a
``.reason`` file beside it, and nothing of it is debited.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Callable
from pathlib import Path

from powerbus.adapters.bank.sim.book import BankBook
from powerbus.adapters.bank.values import LineStatus, PaymentChannel
from powerbus.adapters.bank.withholding import (
    WithholdingResult,
    WithholdingResults,
    parse_batch,
    render_results,
    result_file_name,
    write_file,
)
from powerbus.bus.kernel.errors import PowerbusError

__all__ = ["WithholdingDesk"]

log = logging.getLogger(__name__)


class WithholdingDesk:
    def __init__(
        self,
        *,
        book: BankBook,
        drop_dir: Path,
        rng: random.Random,
        serial: Callable[[], str],
        settlement_date: Callable[[dt.datetime], dt.date],
        fail_rate: float = 0.1,
    ) -> None:
        self._book = book
        self.inbox = drop_dir / "withholding" / "in"
        self.outbox = drop_dir / "withholding" / "out"
        self._rng = rng
        self._serial = serial
        self._settlement_date = settlement_date
        self._fail_rate = fail_rate
        self.batches = 0
        self.rejected = 0

    def scan(self, now: dt.datetime) -> int:
        """Process every waiting batch file; returns how many were processed."""
        self.inbox.mkdir(parents=True, exist_ok=True)
        done = 0
        for path in sorted(self.inbox.glob("WH_*.txt")):
            try:
                batch = parse_batch(path.read_bytes(), file_name=path.name)
            except PowerbusError as exc:
                log.warning("withholding batch refused: %s", exc)
                path.with_suffix(".reason").write_text(f"{exc}\n", encoding="utf-8")
                path.rename(path.with_suffix(".rejected"))
                self.rejected += 1
                continue
            results = []
            for debit in batch.debits:
                ok = self._rng.random() >= self._fail_rate
                serial = self._serial() if ok else ""
                if ok:
                    self._book.collect(
                        serial,
                        debit.account_id,
                        debit.amount,
                        now,
                        self._settlement_date(now),
                        PaymentChannel.BANK_WITHHOLDING,
                    )
                    self._book.settle(serial, LineStatus.SUCCESS)
                results.append(
                    WithholdingResult(
                        seq=debit.seq,
                        account_id=debit.account_id,
                        amount=debit.amount,
                        ok=ok,
                        bank_txn_id=serial,
                        fail_code="" if ok else "E051",
                        fail_reason="" if ok else "余额不足",
                    )
                )
            out = WithholdingResults(
                bank_code=batch.bank_code,
                batch_id=batch.batch_id,
                batch_date=batch.batch_date,
                results=tuple(results),
            )
            write_file(
                self.outbox,
                result_file_name(batch.bank_code, batch.batch_date, batch.batch_id),
                render_results(out),
            )
            path.rename(path.with_suffix(".done"))
            self.batches += 1
            done += 1
        return done
