"""The bank node: one per bank. North, ``powerbus.payment.v1.BankGateway`` on the bus;
south, the bank's own protocol — a :class:`ProtocolServer` the bank dials for 查询欠费,
缴费, 冲正 and status queries, and a :class:`BankClient` to the bank's server for
statement downloads (对账文件).

::

    powerbus node bank --bank 0102 --bus 127.0.0.1:50051 --id bank-0102 \\
        --listen-bank 0.0.0.0:9100 --bank-address 10.0.0.5:9200 --key-hex 00ff...

It registers ``bank_code`` and ``bank_listen`` in its metadata: the payment node finds
the node of a bank by the first, scripts and tests find where to point the bank by the
second.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc

from powerbus.adapters.bank import (
    BankClient,
    FileDataLoss,
    KeyRing,
    MessageCodec,
    ProtocolServer,
    Statement,
    collection_dispatcher,
)
from powerbus.billing.v1 import billing_pb2_grpc
from powerbus.bus.kernel.errors import InvalidArgument
from powerbus.nodes.bank.collections import Collections
from powerbus.nodes.bank.config import BankSettings
from powerbus.nodes.bank.protocol import WireHandler
from powerbus.nodes.payment import convert
from powerbus.nodes.payment.reconciliation import BANK_CODE_KEY
from powerbus.nodes.sdk.config import NodeConfig
from powerbus.nodes.sdk.node import BusClient, ConfiguredNode
from powerbus.payment.v1 import payment_pb2, payment_pb2_grpc

__all__ = ["BANK_LISTEN_KEY", "BankNode"]

Context = grpc.aio.ServicerContext[Any, Any]

BANK_LISTEN_KEY = "bank_listen"
"""Registry metadata key: where this node listens for the bank (HOST:PORT)."""

_PAGE = 1_000
_MAX_PAGE = 10_000


class BankNode(ConfiguredNode[BankSettings], payment_pb2_grpc.BankGatewayServicer):
    """``powerbus node bank``: a bank's collections and statements.

    >>> [s.name for s in BankNode.served_services()]
    ['powerbus.payment.v1.BankGateway']
    """

    kind = "bank"
    settings_type = BankSettings

    payments = BusClient(payment_pb2_grpc.PaymentsStub)
    billing = BusClient(billing_pb2_grpc.BillingStub, required=False)

    def __init__(self, *, settings: BankSettings) -> None:
        self.settings = settings
        self._server: ProtocolServer | None = None
        self._bank: BankClient | None = None
        self._collections: Collections | None = None
        # The statement being paged through, kept so every page comes from one file.
        self._statement: Statement | None = None

    @classmethod
    def from_settings(cls, settings: BankSettings, config: NodeConfig) -> BankNode:
        return cls(settings=settings)

    def metadata(self) -> Mapping[str, str]:
        listen = str(self._server.address) if self._server else str(self.settings.listen_bank)
        return {BANK_CODE_KEY: self.settings.bank, BANK_LISTEN_KEY: listen}

    async def on_start(self) -> None:
        settings = self.settings
        assert settings.bank_address is not None  # BankSettings refuses None
        codec = MessageCodec(KeyRing({settings.bank: settings.key}))
        self._collections = Collections(
            bank_code=settings.bank,
            payments=self.payments,
            billing=self.billing,
            timeout=settings.call_timeout,
        )
        # Dials on first use: the bank need not be up when the node starts.
        self._bank = BankClient(
            address=settings.bank_address,
            codec=codec,
            bank_code=settings.bank,
            timeout=settings.bank_timeout,
        )
        self._server = ProtocolServer(
            codec=codec,
            handler=collection_dispatcher(WireHandler(self._collections), bank_code=settings.bank),
            listen=settings.listen_bank,
            # Above the calls it makes, so a slow bus is answered 9098, not cut off.
            handler_timeout=settings.call_timeout * 3,
            concurrency=settings.concurrency,
        )
        await self._server.start()

    async def on_stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop()
        bank, self._bank = self._bank, None
        if bank is not None:
            await bank.stop()

    def _parts(self) -> tuple[Collections, BankClient]:
        if self._collections is None or self._bank is None:
            raise RuntimeError("BankNode is not running")
        return self._collections, self._bank

    # -- BankGateway -------------------------------------------------------------------

    async def QueryArrears(
        self, request: payment_pb2.QueryArrearsRequest, context: Context
    ) -> payment_pb2.QueryArrearsResponse:
        return await self._parts()[0].query_arrears(request)

    async def Collect(
        self, request: payment_pb2.CollectRequest, context: Context
    ) -> payment_pb2.CollectResponse:
        return await self._parts()[0].collect(request)

    async def Reverse(
        self, request: payment_pb2.ReverseRequest, context: Context
    ) -> payment_pb2.ReverseResponse:
        return await self._parts()[0].reverse(request)

    async def FetchStatement(
        self, request: payment_pb2.FetchStatementRequest, context: Context
    ) -> payment_pb2.FetchStatementResponse:
        collections, bank = self._parts()
        collections.check_bank(request.bank_code)
        if not request.HasField("settlement_date"):
            raise InvalidArgument("settlement_date", "must be given")
        day = convert.to_date(request.settlement_date)
        sha, offset = _token(request.page.page_token)
        statement = self._statement
        if (
            not offset
            or statement is None
            or (statement.settlement_date, statement.sha256)
            != (
                day,
                sha,
            )
        ):
            statement = self._statement = await bank.fetch_statement(day)
            if offset and statement.sha256 != sha:
                raise FileDataLoss(statement.file_name, "the statement changed while paging")
        size = min(request.page.page_size or _PAGE, _MAX_PAGE)
        lines = statement.lines[offset : offset + size]
        reply = payment_pb2.FetchStatementResponse(
            bank_code=statement.bank_code,
            settlement_date=request.settlement_date,
            lines=[convert.statement_line_proto(line) for line in lines],
            line_count=statement.line_count,
            total_amount=convert.money(statement.total_amount),
            file_name=statement.file_name,
            sha256=statement.sha256,
        )
        end = offset + len(lines)
        reply.page.next_page_token = (
            f"{statement.sha256}:{end}" if end < len(statement.lines) else ""
        )
        reply.page.total_size = len(statement.lines)
        return reply


def _token(token: str) -> tuple[str, int]:
    if not token:
        return "", 0
    sha, _, offset = token.partition(":")
    if not offset.isdigit():
        raise InvalidArgument("page.page_token", f"{token!r} is not a token this node issued")
    return sha, int(offset)
