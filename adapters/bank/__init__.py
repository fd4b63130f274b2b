"""Bank gateways' south side: the banks' own 代收 protocol, statement and withholding
files, a pure reconciliation engine, and a simulated bank (``sim``).

Layers, each importable alone:

* ``protocol`` — framing (6-digit ASCII length), fixed-width GBK fields, HMAC MAC per
  bank, messages by transaction code, response codes ↔ powerbus errors (no sockets);
* ``transport`` — :class:`ProtocolServer` and :class:`ProtocolClient` on asyncio streams;
* :mod:`.service` and :mod:`.client` — typed handlers and clients for each direction;
* ``statement``, :mod:`.withholding` — the files, refused whole when totals disagree;
* ``reconcile`` — :func:`reconcile` and its report, pure logic.

>>> from powerbus.adapters.bank import KeyRing, MessageCodec, Category
>>> Category.ONLY_IN_BANK.value
'ONLY_IN_BANK'
"""

from powerbus.adapters.bank.client import BankClient, BankGateway, CollectionClient, SerialSource
from powerbus.adapters.bank.errors import (
    DataLoss,
    EncodingError,
    FailedPrecondition,
    FileDataLoss,
    FileFormatError,
    FramingError,
    MacMismatch,
    ProtocolError,
    TruncatedMessage,
)
from powerbus.adapters.bank.protocol.codec import MessageCodec
from powerbus.adapters.bank.protocol.framing import FrameDecoder, frame
from powerbus.adapters.bank.protocol.mac import KeyRing
from powerbus.adapters.bank.protocol.messages import (
    ArrearsQuery,
    ArrearsReply,
    Header,
    Message,
    MsgType,
    PaymentReply,
    PaymentRequest,
    RespCode,
    ReversalReply,
    ReversalRequest,
    StatementChunk,
    StatementRequest,
    StatusQuery,
    StatusReply,
    TxnCode,
)
from powerbus.adapters.bank.reconcile.engine import reconcile
from powerbus.adapters.bank.reconcile.model import (
    CategoryTotal,
    ItemResolution,
    LedgerEntry,
    ReconciliationItem,
    ReconciliationReport,
    Window,
)
from powerbus.adapters.bank.reconcile.report import render_item, render_table, report_to_json
from powerbus.adapters.bank.service import (
    BankSideHandler,
    CollectionHandler,
    bank_dispatcher,
    collection_dispatcher,
    statement_chunk,
)
from powerbus.adapters.bank.statement.files import (
    parse_statement,
    read_statement,
    render_statement,
    write_statement,
)
from powerbus.adapters.bank.statement.model import (
    Statement,
    StatementFormat,
    StatementLine,
    net_total,
    statement_file_name,
)
from powerbus.adapters.bank.transport.connection import ProtocolClient
from powerbus.adapters.bank.transport.server import ProtocolServer, ServerStats
from powerbus.adapters.bank.values import (
    Category,
    LineKind,
    LineStatus,
    PaymentChannel,
    PaymentStatus,
    ResolutionAction,
    ReverseOutcome,
    TxnState,
    format_fen,
)
from powerbus.adapters.bank.withholding import (
    WithholdingBatch,
    WithholdingDebit,
    WithholdingResult,
    WithholdingResults,
    parse_batch,
    parse_results,
    render_batch,
    render_results,
)

__all__ = [
    "ArrearsQuery",
    "ArrearsReply",
    "BankClient",
    "BankGateway",
    "BankSideHandler",
    "Category",
    "CategoryTotal",
    "CollectionClient",
    "CollectionHandler",
    "DataLoss",
    "EncodingError",
    "FailedPrecondition",
    "FileDataLoss",
    "FileFormatError",
    "FrameDecoder",
    "FramingError",
    "Header",
    "ItemResolution",
    "KeyRing",
    "LedgerEntry",
    "LineKind",
    "LineStatus",
    "MacMismatch",
    "Message",
    "MessageCodec",
    "MsgType",
    "PaymentChannel",
    "PaymentReply",
    "PaymentRequest",
    "PaymentStatus",
    "ProtocolClient",
    "ProtocolError",
    "ProtocolServer",
    "ReconciliationItem",
    "ReconciliationReport",
    "ResolutionAction",
    "RespCode",
    "ReversalReply",
    "ReversalRequest",
    "ReverseOutcome",
    "SerialSource",
    "ServerStats",
    "Statement",
    "StatementChunk",
    "StatementFormat",
    "StatementLine",
    "StatementRequest",
    "StatusQuery",
    "StatusReply",
    "TruncatedMessage",
    "TxnCode",
    "TxnState",
    "Window",
    "WithholdingBatch",
    "WithholdingDebit",
    "WithholdingResult",
    "WithholdingResults",
    "bank_dispatcher",
    "collection_dispatcher",
    "format_fen",
    "frame",
    "net_total",
    "parse_batch",
    "parse_results",
    "parse_statement",
    "read_statement",
    "reconcile",
    "render_batch",
    "render_item",
    "render_results",
    "render_statement",
    "render_table",
    "report_to_json",
    "statement_chunk",
    "statement_file_name",
    "write_statement",
]
