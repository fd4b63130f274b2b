"""Typed clients of the bank protocol, one per direction.

* :class:`BankClient` is the utility's side: it asks the bank what became of a transaction
  (交易状态查询) and downloads statements (对账文件下载). It satisfies
  :class:`BankGateway`, the interface the payment side is written against.
* :class:`CollectionClient` is the bank's side: it queries arrears, reports payments and
  reverses them. The bank simulator uses it; so would a test of the bank node.

Both wrap a :class:`~powerbus.adapters.bank.transport.connection.ProtocolClient`; every
call has a deadline and raises powerbus errors (:mod:`.protocol.codes`).

>>> serials = SerialSource("U", clock=lambda: dt.datetime(2026, 12, 4, 9, 30))
>>> serials(), serials()
('U261204093000000001', 'U261204093000000002')
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from collections.abc import Callable
from typing import Protocol, TypeVar

from powerbus.adapters.bank.errors import FileDataLoss, ProtocolError
from powerbus.adapters.bank.protocol.codec import MessageCodec
from powerbus.adapters.bank.protocol.messages import (
    ArrearsQuery,
    ArrearsReply,
    Body,
    PaymentReply,
    PaymentRequest,
    ReversalReply,
    ReversalRequest,
    StatementChunk,
    StatementRequest,
    StatusQuery,
    StatusReply,
)
from powerbus.adapters.bank.statement.files import parse_statement
from powerbus.adapters.bank.statement.model import Statement
from powerbus.adapters.bank.transport.connection import ProtocolClient
from powerbus.adapters.bank.values import PaymentChannel
from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.lifecycle import Lifecycle

__all__ = ["BankClient", "BankGateway", "CollectionClient", "SerialSource"]

B = TypeVar("B", bound=Body)
_MAX_STATEMENT = 2_000_000_000


class SerialSource:
    """Serials (流水号) of requests this side starts: prefix, time, counter; ≤ 20 ASCII."""

    def __init__(self, prefix: str, *, clock: Callable[[], dt.datetime] = dt.datetime.now) -> None:
        self._prefix = prefix
        self._clock = clock
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}{self._clock():%y%m%d%H%M%S}{next(self._counter) % 1_000_000:06d}"


class BankGateway(Protocol):
    """What the utility asks of a bank."""

    async def query_status(self, serial: str, txn_date: dt.date) -> StatusReply:
        """What became of transaction ``serial`` of ``txn_date``."""
        ...

    async def fetch_statement(self, settlement_date: dt.date) -> Statement:
        """The bank's statement of ``settlement_date``, checked and parsed."""
        ...


class _Typed(Lifecycle):
    """A protocol client whose calls expect one reply type each."""

    serial_prefix = ""
    """Starts every serial this side makes up, so the two sides' serials never meet."""

    def __init__(
        self,
        *,
        address: HostPort,
        codec: MessageCodec,
        bank_code: str,
        timeout: dt.timedelta = dt.timedelta(seconds=10),
        serials: SerialSource | None = None,
    ) -> None:
        self.connection = ProtocolClient(address=address, codec=codec, bank_code=bank_code)
        self.timeout = timeout
        self.serials = serials or SerialSource(self.serial_prefix)

    async def start(self) -> None:
        await self.connection.start()

    async def stop(self) -> None:
        await self.connection.stop()

    async def _call(
        self,
        body: Body,
        reply: type[B],
        *,
        serial: str | None = None,
        timeout: dt.timedelta | None = None,
        sent_at: dt.datetime | None = None,
    ) -> B:
        got = await self.connection.call(
            body, serial=serial or self.serials(), timeout=timeout or self.timeout, sent_at=sent_at
        )
        if not isinstance(got, reply):
            raise ProtocolError("body", -1, f"expected {reply.__name__}, got {type(got).__name__}")
        return got


class BankClient(_Typed):
    """The utility's client of one bank (a :class:`BankGateway`).

    >>> # async with BankClient(address=bank, codec=codec, bank_code="0102") as bank:
    >>> #     statement = await bank.fetch_statement(dt.date(2026, 12, 4))
    """

    serial_prefix = "U"

    async def query_status(self, serial: str, txn_date: dt.date) -> StatusReply:
        return await self._call(StatusQuery(target_serial=serial, txn_date=txn_date), StatusReply)

    async def fetch_statement(self, settlement_date: dt.date) -> Statement:
        """Download in chunks, check the SHA-256 the bank announced, then parse (a bad line
        raises ``FileFormatError``, bad totals ``FileDataLoss``)."""
        data = bytearray()
        chunk = await self._chunk(settlement_date, 0)
        data += chunk.data
        # Bounded: each round must make progress or the download fails.
        while len(data) < chunk.file_size <= _MAX_STATEMENT:
            chunk = await self._chunk(settlement_date, len(data))
            if not chunk.data:
                raise FileDataLoss(chunk.file_name, f"download stalled at byte {len(data)}")
            data += chunk.data
        if hashlib.sha256(data).hexdigest() != chunk.sha256 or len(data) != chunk.file_size:
            raise FileDataLoss(chunk.file_name, "downloaded bytes do not match the bank's SHA-256")
        return parse_statement(bytes(data), file_name=chunk.file_name)

    async def _chunk(self, day: dt.date, offset: int) -> StatementChunk:
        return await self._call(
            StatementRequest(settlement_date=day, offset=offset), StatementChunk
        )


class CollectionClient(_Typed):
    """The bank's client of the utility's bank node: 查询欠费, 缴费, 冲正, status."""

    serial_prefix = "B"

    async def query_arrears(self, account_id: str) -> ArrearsReply:
        return await self._call(ArrearsQuery(account_id=account_id), ArrearsReply)

    async def collect(
        self,
        *,
        serial: str,
        account_id: str,
        amount: int,
        settlement_date: dt.date,
        channel: PaymentChannel = PaymentChannel.BANK_COUNTER,
        timeout: dt.timedelta | None = None,
        collected_at: dt.datetime | None = None,
    ) -> PaymentReply:
        """Report a payment under the bank's ``serial``; resending the serial is safe.
        ``collected_at`` (bank time of the collection, default now) travels as the
        header's time, which the utility records as when the customer paid."""
        body = PaymentRequest(
            account_id=account_id, amount=amount, channel=channel, settlement_date=settlement_date
        )
        return await self._call(
            body, PaymentReply, serial=serial, timeout=timeout, sent_at=collected_at
        )

    async def reverse(
        self,
        *,
        serial: str,
        original_serial: str,
        amount: int,
        reason: str = "",
        timeout: dt.timedelta | None = None,
    ) -> ReversalReply:
        body = ReversalRequest(original_serial=original_serial, amount=amount, reason=reason)
        return await self._call(body, ReversalReply, serial=serial, timeout=timeout)

    async def query_status(self, serial: str, txn_date: dt.date) -> StatusReply:
        return await self._call(StatusQuery(target_serial=serial, txn_date=txn_date), StatusReply)
