"""The bank simulator: plays one bank against the utility's bank node.

It dials the node and sends collections at ``rate`` per second (an arrears query first
for half of them), with the faults of its :class:`~.faults.FaultPlan`: latency, lost
replies it then resolves as real banks do (resend the same serial, or reverse — never a
new serial for the same money), duplicate serials, malformed messages. It answers status
queries and statement downloads on its own port, writes the statement of every
settlement date into the drop folder, and works withholding batch files (:mod:`.desk`).

>>> # async with BankSimulator(SimSettings(bank_code="0102", connect=node)) as bank:
>>> #     await bank.wait_sent(timeout=30)
>>> #     bank.stats.succeeded, bank.book.lines_for(today)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import itertools
import logging
import random
from collections.abc import Callable
from pathlib import Path

from powerbus.adapters.bank.client import CollectionClient, SerialSource
from powerbus.adapters.bank.errors import FailedPrecondition
from powerbus.adapters.bank.protocol.codec import MessageCodec
from powerbus.adapters.bank.protocol.mac import KeyRing
from powerbus.adapters.bank.protocol.messages import (
    Header,
    PaymentRequest,
    StatementChunk,
    StatementRequest,
    StatusQuery,
    StatusReply,
)
from powerbus.adapters.bank.service import bank_dispatcher, statement_chunk
from powerbus.adapters.bank.sim.book import BankBook
from powerbus.adapters.bank.sim.desk import WithholdingDesk
from powerbus.adapters.bank.sim.faults import Malformed
from powerbus.adapters.bank.sim.misconduct import send_malformed, send_unread
from powerbus.adapters.bank.sim.settings import SimSettings
from powerbus.adapters.bank.statement.files import render_statement, write_statement
from powerbus.adapters.bank.statement.model import statement_file_name
from powerbus.adapters.bank.transport.server import ProtocolServer
from powerbus.adapters.bank.values import LineStatus, PaymentChannel, TxnState
from powerbus.bus.kernel.errors import DeadlineExceeded, PowerbusError, Unavailable
from powerbus.bus.kernel.lifecycle import Lifecycle
from powerbus.bus.kernel.statefile import write_state_file

__all__ = ["BankSimulator", "SimStats"]

log = logging.getLogger(__name__)
_RETRY_PAUSE = 0.05


@dataclasses.dataclass
class SimStats:
    """What the bank did; every collection ends in exactly one of succeeded, refused,
    reversed or unresolved."""

    started: int = 0
    succeeded: int = 0
    refused: int = 0
    reversed: int = 0
    unresolved: int = 0
    timeouts: int = 0
    resent: int = 0
    queried: int = 0
    duplicates_sent: int = 0
    duplicates_acknowledged: int = 0
    malformed_sent: int = 0
    malformed_answered: int = 0
    statements_written: int = 0


class BankSimulator(Lifecycle):
    """One simulated bank; ``clock`` gives bank local time (naive)."""

    def __init__(
        self, settings: SimSettings, *, clock: Callable[[], dt.datetime] = dt.datetime.now
    ) -> None:
        self.settings = settings
        self._clock = clock
        self.keys = KeyRing({settings.bank_code: settings.mac_key})
        self.codec = MessageCodec(self.keys)
        self.book = BankBook(settings.bank_code)
        self.stats = SimStats()
        self._serials = SerialSource("B", clock=clock)
        self.client = CollectionClient(
            address=settings.connect,
            codec=self.codec,
            bank_code=settings.bank_code,
            timeout=settings.timeout,
            serials=self._serials,
        )
        self.server = ProtocolServer(
            codec=self.codec,
            handler=bank_dispatcher(self, bank_code=settings.bank_code),
            listen=settings.listen,
        )
        self.desk = (
            WithholdingDesk(
                book=self.book,
                drop_dir=settings.drop_dir,
                rng=random.Random(settings.seed),
                serial=self._serials,
                settlement_date=self.settlement_date,
            )
            if settings.drop_dir is not None
            else None
        )
        self._malformed = itertools.cycle(Malformed)
        self._tasks: set[asyncio.Task[None]] = set()
        self._main: list[asyncio.Task[None]] = []
        self._sent = asyncio.Event()
        self._cache: dict[dt.date, bytes] = {}

    @property
    def address(self) -> str:
        """Where the bank answers status queries and statement downloads."""
        return str(self.server.address)

    async def start(self) -> None:
        if self._main:
            return
        await self.server.start()
        self._main = [
            asyncio.create_task(self._collector(), name="bank-sim-collector"),
            asyncio.create_task(self._housekeeping(), name="bank-sim-housekeeping"),
        ]
        self._write_state()
        log.info(
            "bank %s simulator: queries on %s, collections to %s",
            self.settings.bank_code,
            self.address,
            self.settings.connect,
        )

    async def stop(self) -> None:
        main, self._main = self._main, []
        for task in [*main, *self._tasks]:
            task.cancel()
        await asyncio.gather(*main, *self._tasks, return_exceptions=True)
        await self.client.stop()
        await self.server.stop()
        if main:
            self.housekeep()
            self._write_state(stopped=True)

    async def wait_sent(self, *, timeout: float) -> None:
        """Wait until ``count`` collections were sent and resolved."""
        await asyncio.wait_for(self._sent.wait(), timeout)

    def settlement_date(self, at: dt.datetime) -> dt.date:
        """The bank's accounting date of a transaction at ``at`` (past the cut-off: next day)."""
        cutoff = self.settings.cutoff
        return at.date() + dt.timedelta(days=1) if cutoff and at.time() >= cutoff else at.date()

    def housekeep(self) -> list[Path]:
        """Work waiting withholding batches and (re)write every statement file."""
        if self.desk is not None:
            self.desk.scan(self._clock())
        return self.write_statements()

    def write_statements(self) -> list[Path]:
        if self.settings.drop_dir is None:
            return []
        written = []
        for day in self.book.dates():
            written.append(
                write_statement(
                    self.settings.drop_dir,
                    self.settings.bank_code,
                    day,
                    self.book.lines_for(day),
                    fmt=self.settings.statement_format,
                    created=self._created(day),
                )
            )
        self.stats.statements_written += len(written)
        return written

    # --- the bank's side of the protocol (BankSideHandler) --------------------------------

    async def query_status(self, header: Header, request: StatusQuery) -> StatusReply:
        txn = self.book.get(request.target_serial)
        return StatusReply(
            target_serial=request.target_serial,
            state=self.book.state(request.target_serial),
            account_id=txn.account_id if txn else "",
            amount=txn.amount if txn else 0,
        )

    async def statement(self, header: Header, request: StatementRequest) -> StatementChunk:
        day = request.settlement_date
        if day > self.settlement_date(self._clock()):
            raise FailedPrecondition(f"no statement for {day} yet")
        # One rendering per download, so chunks of a file still being added to agree.
        if request.offset == 0 or day not in self._cache:
            self._cache[day] = render_statement(
                self.settings.bank_code,
                day,
                self.book.lines_for(day),
                fmt=self.settings.statement_format,
                created=self._created(day),
            )
        name = statement_file_name(self.settings.bank_code, day, self.settings.statement_format)
        return statement_chunk(request, file_name=name, data=self._cache[day])

    # --- collections ----------------------------------------------------------------------

    async def _await_utility(self) -> None:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.settings.connect_wait.total_seconds()
        while True:
            try:
                await self.client.start()
                return
            except Unavailable as exc:
                if loop.time() >= give_up:
                    log.warning("utility still unreachable (%s); collecting anyway", exc)
                    return
            await asyncio.sleep(min(0.2, max(0.0, give_up - loop.time())))

    async def _collector(self) -> None:
        await self._await_utility()
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(self.settings.max_in_flight)
        interval = 1.0 / self.settings.rate
        next_at = loop.time()
        for n in itertools.count():
            if self.settings.count is not None and n >= self.settings.count:
                break
            await slots.acquire()
            task = asyncio.create_task(self._one(n))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(lambda _task: slots.release())
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - loop.time()))
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        self.housekeep()
        self._sent.set()

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self.settings.statement_interval.total_seconds())
            self.housekeep()

    async def _one(self, n: int) -> None:
        # A generator of its own per collection keeps runs of one seed identical however
        # the tasks interleave.
        rng = random.Random(self.settings.seed * 1_000_003 + n)
        faults = self.settings.faults
        account = rng.choice(self.settings.accounts)
        amount = await self._amount(account, rng)
        low, high = faults.latency_ms
        if high:
            await asyncio.sleep(rng.uniform(low, high) / 1000)
        if rng.random() < faults.malformed:
            await self._misbehave(account)
        now = self._clock()
        serial = self._serials()
        day = self.settlement_date(now)
        self.book.collect(serial, account, amount, now, day, PaymentChannel.BANK_COUNTER)
        self.stats.started += 1
        try:
            body = PaymentRequest(
                account_id=account,
                amount=amount,
                channel=PaymentChannel.BANK_COUNTER,
                settlement_date=day,
            )
            if rng.random() < faults.lost_reply:
                # Out it goes, but its reply is never read: raises DeadlineExceeded.
                await send_unread(self.client, self.codec, serial=serial, body=body, sent_at=now)
            else:
                await self.client.collect(
                    serial=serial,
                    account_id=account,
                    amount=amount,
                    settlement_date=day,
                    collected_at=now,
                )
        except (DeadlineExceeded, Unavailable) as exc:
            log.info("collection %s timed out (%s); resolving", serial, exc)
            await self._resolve(serial, account, amount, day, rng)
            return
        except PowerbusError as exc:
            log.info("collection %s refused: %s", serial, exc)
            self.book.settle(serial, LineStatus.FAILED)
            self.stats.refused += 1
            return
        self.book.settle(serial, LineStatus.SUCCESS)
        self.stats.succeeded += 1
        if rng.random() < faults.processing:
            self.book.settle(serial, LineStatus.PROCESSING)
        if rng.random() < faults.duplicate:
            await self._duplicate(serial, account, amount, day)

    async def _amount(self, account: str, rng: random.Random) -> int:
        amount = rng.randint(1_000, 50_000)
        if rng.random() < 0.5:
            with contextlib.suppress(PowerbusError):
                due = (await self.client.query_arrears(account)).total_due
                amount = due if due > 0 else amount
        return amount

    async def _resolve(
        self, serial: str, account: str, amount: int, day: dt.date, rng: random.Random
    ) -> None:
        """A timed-out collection is settled by asking its status, resending its serial or
        reversing it — never by collecting again under a new serial."""
        self.stats.timeouts += 1
        if rng.random() < self.settings.faults.query:
            state = await self._ask_status(serial)
            if state is TxnState.SUCCESS:
                self.book.settle(serial, LineStatus.SUCCESS)
                self.stats.succeeded += 1
                return
        if rng.random() < self.settings.faults.resend:
            for _ in range(self.settings.max_attempts):
                try:
                    await self.client.collect(
                        serial=serial,
                        account_id=account,
                        amount=amount,
                        settlement_date=day,
                        collected_at=self._at(serial),
                    )
                except (DeadlineExceeded, Unavailable):
                    await asyncio.sleep(_RETRY_PAUSE)
                    continue
                except PowerbusError:
                    self.book.settle(serial, LineStatus.FAILED)
                    self.stats.refused += 1
                    return
                self.book.settle(serial, LineStatus.SUCCESS)
                self.stats.resent += 1
                self.stats.succeeded += 1
                return
        reversal = self._serials()
        for _ in range(self.settings.max_attempts):
            try:
                await self.client.reverse(
                    serial=reversal, original_serial=serial, amount=amount, reason="银行超时冲正"
                )
            except (DeadlineExceeded, Unavailable):
                await asyncio.sleep(_RETRY_PAUSE)
                continue
            except PowerbusError as exc:
                log.warning("reversal %s of %s refused: %s", reversal, serial, exc)
                break
            self.book.reverse(serial, reversal, self._clock())
            self.stats.reversed += 1
            return
        self.stats.unresolved += 1  # stays 在途 in the statement

    async def _ask_status(self, serial: str) -> TxnState | None:
        """交易状态查询 to the utility; None when it cannot be reached in time."""
        for _ in range(self.settings.max_attempts):
            try:
                reply = await self.client.query_status(serial, self._at(serial).date())
            except (DeadlineExceeded, Unavailable):
                await asyncio.sleep(_RETRY_PAUSE)
                continue
            except PowerbusError as exc:
                log.info("status query of %s refused: %s", serial, exc)
                return None
            self.stats.queried += 1
            return reply.state
        return None

    async def _duplicate(self, serial: str, account: str, amount: int, day: dt.date) -> None:
        self.stats.duplicates_sent += 1
        with contextlib.suppress(PowerbusError):
            reply = await self.client.collect(
                serial=serial,
                account_id=account,
                amount=amount,
                settlement_date=day,
                collected_at=self._at(serial),
            )
            self.stats.duplicates_acknowledged += int(reply.duplicate)

    async def _misbehave(self, account: str) -> None:
        kind = next(self._malformed)
        self.stats.malformed_sent += 1
        try:
            answered = await send_malformed(
                self.client,
                self.codec,
                self.keys,
                kind,
                account=account,
                serial=self._serials(),
                connect=self.settings.connect,
            )
        except PowerbusError as exc:
            log.info("malformed %s: %s", kind.value, exc)
            return
        self.stats.malformed_answered += int(answered)

    def _at(self, serial: str) -> dt.datetime:
        """The bank time of a collection in the book (resends carry the original's)."""
        txn = self.book.get(serial)
        return txn.at if txn is not None else self._clock()

    def _created(self, day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(1, 0))

    def _write_state(self, *, stopped: bool = False) -> None:
        if self.settings.state_file is None:
            return
        state: dict[str, object] = {
            "bank": self.settings.bank_code,
            "listen": self.address,
            "connect": str(self.settings.connect),
        }
        if self.settings.drop_dir is not None:
            state["drop_dir"] = str(self.settings.drop_dir)
        if stopped:
            state["stopped"] = True
            state["stats"] = dataclasses.asdict(self.stats)
        write_state_file(self.settings.state_file, state)
