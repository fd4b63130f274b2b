"""Serving the bank protocol: the handler interfaces each side implements, and the
dispatchers that route decoded requests to them by transaction code.

The utility's bank node implements :class:`CollectionHandler` (the bank asks what is
owed, reports payments, reverses them, asks what became of one); the bank — here its
simulator — implements :class:`BankSideHandler` (the utility asks what became of a
transaction and downloads statements). Either dispatcher plugs into a
:class:`~powerbus.adapters.bank.transport.server.ProtocolServer`::

    server = ProtocolServer(codec=codec, handler=collection_dispatcher(node, bank_code="0102"))
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from powerbus.adapters.bank.protocol.messages import (
    ArrearsQuery,
    ArrearsReply,
    Body,
    Header,
    PaymentReply,
    PaymentRequest,
    ReversalReply,
    ReversalRequest,
    StatementChunk,
    StatementRequest,
    StatusQuery,
    StatusReply,
)
from powerbus.adapters.bank.transport.server import Handler
from powerbus.bus.kernel.errors import InvalidArgument, Unimplemented

__all__ = [
    "CHUNK_SIZE",
    "BankSideHandler",
    "CollectionHandler",
    "bank_dispatcher",
    "collection_dispatcher",
    "statement_chunk",
]

CHUNK_SIZE = 60_000


class CollectionHandler(Protocol):
    """The utility's side of a collection: what the bank node does for each request.

    Raise powerbus errors to refuse (``NotFound`` → ``1001``, ``AlreadyExists`` → ``2001``,
    ``FailedPrecondition`` → ``2002``, ``Unavailable`` → ``9098``); see :mod:`.protocol.codes`.
    """

    async def query_arrears(self, header: Header, request: ArrearsQuery) -> ArrearsReply: ...

    async def collect(self, header: Header, request: PaymentRequest) -> PaymentReply: ...

    async def reverse(self, header: Header, request: ReversalRequest) -> ReversalReply: ...

    async def query_status(self, header: Header, request: StatusQuery) -> StatusReply: ...


class BankSideHandler(Protocol):
    """The bank's side: status of its transactions and its statement files."""

    async def query_status(self, header: Header, request: StatusQuery) -> StatusReply: ...

    async def statement(self, header: Header, request: StatementRequest) -> StatementChunk: ...


_Route = Callable[[Header, Any], Awaitable[Body]]


def _dispatcher(bank_code: str, routes: dict[type[Body], _Route]) -> Handler:
    async def handle(header: Header, body: Body) -> Body:
        if header.bank_code != bank_code:
            raise InvalidArgument("bank_code", f"{header.bank_code!r} is not bank {bank_code}")
        route = routes.get(type(body))
        if route is None:
            raise Unimplemented(f"transaction {header.txn_code.value} is not served here")
        return await route(header, body)

    return handle


def collection_dispatcher(handler: CollectionHandler, *, bank_code: str) -> Handler:
    """Routes the bank's requests of ``bank_code`` to ``handler``."""
    return _dispatcher(
        bank_code,
        {
            ArrearsQuery: handler.query_arrears,
            PaymentRequest: handler.collect,
            ReversalRequest: handler.reverse,
            StatusQuery: handler.query_status,
        },
    )


def bank_dispatcher(handler: BankSideHandler, *, bank_code: str) -> Handler:
    """Routes the utility's requests to bank ``bank_code``'s ``handler``."""
    return _dispatcher(
        bank_code, {StatusQuery: handler.query_status, StatementRequest: handler.statement}
    )


def statement_chunk(
    request: StatementRequest, *, file_name: str, data: bytes, size: int = CHUNK_SIZE
) -> StatementChunk:
    """The part of a statement file ``request`` asks for (at most ``size`` bytes).

    >>> import datetime as dt
    >>> req = StatementRequest(settlement_date=dt.date(2026, 12, 4), offset=2)
    >>> statement_chunk(req, file_name="f.txt", data=b"abcdef", size=3).data
    b'cde'
    """
    if not 0 <= request.offset <= len(data):
        raise InvalidArgument("offset", f"{request.offset} outside the file's {len(data)} bytes")
    return StatementChunk(
        settlement_date=request.settlement_date,
        file_name=file_name,
        file_size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        offset=request.offset,
        data=data[request.offset : request.offset + size],
    )
