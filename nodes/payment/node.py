"""The payment node: ``powerbus.payment.v1.Payments`` over the double-entry ledger.

The servicer converts and delegates: posts go through :class:`PostingQueue` (group
commit) into :class:`PaymentStore`; application to bills goes to billing through the bus
(:class:`Applier`, inline when it can, else later in order); reconciliation is
:class:`Reconciler`. Database work runs in worker threads so the event loop keeps serving.

::

    powerbus node payment --bus 127.0.0.1:50051 --id payment-1 --db sqlite:///payment.db

Events: ``PaymentStore.events`` is the outbox seam (:class:`EventSink`), called inside the
posting's and the reversal's transactions. With ``--events-in`` the node stages
``payment.payment.posted`` / ``payment.payment.reversed`` in the SDK outbox in its own
database (:class:`~powerbus.nodes.payment.outbox.OutboxSink`) and relays them to the bus.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
from sqlalchemy.engine import Engine

from powerbus.adapters.bank import PaymentStatus
from powerbus.billing.v1 import billing_pb2_grpc
from powerbus.bus.kernel.database import create_engine
from powerbus.bus.kernel.errors import ConfigError, InvalidArgument, NotFound, PowerbusError
from powerbus.nodes.payment import convert
from powerbus.nodes.payment.applier import Applier
from powerbus.nodes.payment.batching import PostingQueue
from powerbus.nodes.payment.billing import BillingCalls, is_down
from powerbus.nodes.payment.config import PaymentSettings
from powerbus.nodes.payment.outbox import OutboxSink
from powerbus.nodes.payment.reconciliation import BankDirectory, Reconciler
from powerbus.nodes.payment.store.migrations import MIGRATIONS
from powerbus.nodes.payment.store.payments import EventSink, PaymentStore
from powerbus.nodes.payment.store.records import PaymentRecord, PostRequest, ReversalRequest
from powerbus.nodes.payment.store.report_store import ReportStore
from powerbus.nodes.sdk.access import caller_identity
from powerbus.nodes.sdk.config import NodeConfig
from powerbus.nodes.sdk.events import Outbox, Publisher, open_event_tables
from powerbus.nodes.sdk.node import BusClient, ConfiguredNode, bus_address_of
from powerbus.payment.v1 import payment_pb2, payment_pb2_grpc
from powerbus.registry.v1 import registry_pb2_grpc

__all__ = ["PaymentNode"]

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]

_PAGE = 100
_MAX_PAGE = 1_000
_KNOWN_ACCOUNTS = 100_000
_MAX_BATCH = 1_000  # payments per PostPayments call (payment.proto)
_ACCOUNT_CHECKS = 32  # billing look-ups of one PostPayments call at once


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class PaymentNode(ConfiguredNode[PaymentSettings], payment_pb2_grpc.PaymentsServicer):
    """``powerbus node payment``: payments, reversals and reconciliation.

    >>> [s.name for s in PaymentNode.served_services()]
    ['powerbus.payment.v1.Payments']
    >>> [(d.service, d.required) for d in PaymentNode.dependencies()]
    [('powerbus.billing.v1.Billing', False)]
    """

    kind = "payment"
    settings_type = PaymentSettings

    # Not required: payments are recorded while billing is down and applied later.
    billing = BusClient(billing_pb2_grpc.BillingStub, required=False)

    def __init__(
        self,
        *,
        settings: PaymentSettings,
        clock: Callable[[], dt.datetime] = _now,
        events: EventSink | None = None,
        bus_address: str | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.events = events
        self._bus_address = bus_address
        self._publisher: Publisher | None = None
        self._engine: Engine | None = None
        self._store: PaymentStore | None = None
        self._postings: PostingQueue | None = None
        self._applier: Applier | None = None
        self._billing: BillingCalls | None = None
        self._banks: BankDirectory | None = None
        self._reconciler: Reconciler | None = None
        # Accounts billing confirmed; bounded, so a flood of ids cannot grow it forever.
        self._known_accounts: set[str] = set()
        # While billing is down, posts skip it for an apply_interval instead of each
        # paying a failed call; the applier keeps trying meanwhile.
        self._billing_down_until = 0.0

    @classmethod
    def from_settings(cls, settings: PaymentSettings, config: NodeConfig) -> PaymentNode:
        return cls(settings=settings, bus_address=bus_address_of(config))

    # -- lifecycle ---------------------------------------------------------------------

    async def on_start(self) -> None:
        settings = self.settings
        engine = self._engine = create_engine(settings.db)
        await asyncio.to_thread(MIGRATIONS.run, engine)
        await self._start_publishing(engine)
        store = self._store = PaymentStore(engine, clock=self.clock, events=self.events)
        self._postings = PostingQueue(store, batch_size=settings.batch_size)
        await self._postings.start()
        self._billing = BillingCalls(self.billing, timeout=settings.billing_timeout)
        self._applier = Applier(store, self._billing, interval=settings.apply_interval)
        await self._applier.start()
        self._applier.kick()  # whatever was pending when the node last stopped
        registry = registry_pb2_grpc.RegistryStub(self.bus.channel)
        self._banks = BankDirectory(registry, timeout=settings.billing_timeout, dial=self.bus.dial)
        self._reconciler = Reconciler(
            store=store,
            reports=ReportStore(engine),
            banks=self._banks,
            bank_timeout=settings.bank_timeout,
            before=settings.window_before,
            after=settings.window_after,
            clock=self.clock,
        )

    async def _start_publishing(self, engine: Engine) -> None:
        """With ``events_in`` set: the outbox in the node's database and its relay to the
        bus, started before the first posting so numbering continues the bus's."""
        addresses = [a.strip() for a in self.settings.events_in.split(",") if a.strip()]
        if not addresses:
            return
        if self._bus_address is None:
            raise ConfigError("events_in: publishing events needs the node's --bus")
        await asyncio.to_thread(open_event_tables, engine)
        outbox = Outbox(engine, source=self.node_id)
        publisher = Publisher(
            source=self.node_id,
            outbox=outbox,
            bus=self._bus_address,
            events_in=addresses,
            channel=self.bus.channel,  # the node's own: its certificate and token
        )
        await publisher.start()
        self._publisher = publisher
        self.events = OutboxSink(outbox)

    async def on_stop(self) -> None:
        for part in (self._applier, self._postings):
            if part is not None:
                await part.stop()
        self._applier = self._postings = None
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            await publisher.stop()
        banks, self._banks = self._banks, None
        if banks is not None:
            await banks.close()
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose()

    @property
    def store(self) -> PaymentStore:
        """The ledger store (running nodes only)."""
        if self._store is None:
            raise RuntimeError("PaymentNode is not running")
        return self._store

    def _running(self) -> tuple[PostingQueue, Applier, BillingCalls, Reconciler]:
        if not (self._postings and self._applier and self._billing and self._reconciler):
            raise RuntimeError("PaymentNode is not running")
        return self._postings, self._applier, self._billing, self._reconciler

    # -- Payments ----------------------------------------------------------------------

    async def PostPayment(
        self, request: payment_pb2.PostPaymentRequest, context: Context
    ) -> payment_pb2.PostPaymentResponse:
        postings, applier, billing, _ = self._running()
        post = convert.post_request(request, now=self.clock().astimezone().replace(tzinfo=None))
        billing_up = time.monotonic() >= self._billing_down_until
        if billing_up:
            await self._check_account(billing, post.account_id)
        outcome = await postings.post(post)
        payment = outcome.payment
        if not outcome.duplicate:
            applied = None
            if billing_up and not outcome.behind_pending:
                applied = await applier.apply(payment)
                if applied is None:
                    self._billing_down()
            if applied:
                payment = await asyncio.to_thread(self.store.get, payment.payment_id)
            else:
                applier.kick()  # billing is down or busy with earlier ones: later, in order
        return payment_pb2.PostPaymentResponse(
            payment=convert.payment_proto(payment), duplicate=outcome.duplicate
        )

    async def PostPayments(
        self, request: payment_pb2.PostPaymentsRequest, context: Context
    ) -> payment_pb2.PostPaymentsResponse:
        postings, applier, billing, _ = self._running()
        count = len(request.payments)
        if not 0 < count <= _MAX_BATCH:
            raise InvalidArgument("payments", f"1 to {_MAX_BATCH:,} per call, got {count:,}")
        now = self.clock().astimezone().replace(tzinfo=None)
        results: list[payment_pb2.PostPaymentResult] = [
            payment_pb2.PostPaymentResult() for _ in range(count)
        ]
        posts: dict[int, PostRequest] = {}
        for index, item in enumerate(request.payments):
            try:
                posts[index] = convert.post_request(item, now=now)
            except PowerbusError as exc:
                results[index].refused.CopyFrom(_refusal(exc))
        if time.monotonic() >= self._billing_down_until:
            refused = await self._check_accounts(billing, {p.account_id for p in posts.values()})
            for index in [i for i, p in posts.items() if p.account_id in refused]:
                results[index].refused.CopyFrom(_refusal(refused[posts.pop(index).account_id]))
        # One part of the group commit: the list shares its transactions.
        outcomes = await postings.post_many(list(posts.values()))
        for index, outcome in zip(posts, outcomes, strict=True):
            if isinstance(outcome, PowerbusError):
                results[index].refused.CopyFrom(_refusal(outcome))
            else:
                results[index].posted.payment.CopyFrom(convert.payment_proto(outcome.payment))
                results[index].posted.duplicate = outcome.duplicate
        applier.kick()  # applied to bills in arrival order, as posts billing missed are
        return payment_pb2.PostPaymentsResponse(results=results)

    async def _check_accounts(
        self, billing: BillingCalls, accounts: set[str]
    ) -> dict[str, PowerbusError]:
        """:meth:`_check_account` of each, a bounded number at once; the refused ones."""
        gate = asyncio.Semaphore(_ACCOUNT_CHECKS)
        refused: dict[str, PowerbusError] = {}

        async def check(account_id: str) -> None:
            async with gate:
                try:
                    await self._check_account(billing, account_id)
                except PowerbusError as exc:
                    refused[account_id] = exc

        await asyncio.gather(*(check(a) for a in accounts))
        return refused

    async def _check_account(self, billing: BillingCalls, account_id: str) -> None:
        """NOT_FOUND for an account billing does not know; when billing is down the
        payment is taken anyway (the bank holds the money; billing applies it later)."""
        if account_id in self._known_accounts:
            return
        try:
            await billing.arrears(account_id)
        except NotFound:
            raise NotFound(f"account {account_id} is unknown to billing") from None
        except PowerbusError as exc:
            if is_down(exc):
                self._billing_down()
                return
            raise
        if len(self._known_accounts) >= _KNOWN_ACCOUNTS:
            self._known_accounts.clear()
        self._known_accounts.add(account_id)

    def _billing_down(self) -> None:
        self._billing_down_until = time.monotonic() + self.settings.apply_interval.total_seconds()

    async def GetPayment(
        self, request: payment_pb2.GetPaymentRequest, context: Context
    ) -> payment_pb2.Payment:
        key = request.WhichOneof("key")
        if key == "payment_id":
            found: PaymentRecord | None = await asyncio.to_thread(
                self.store.get, request.payment_id
            )
        elif key == "bank_transaction":
            ref = request.bank_transaction
            found = await asyncio.to_thread(self.store.find, ref.bank_code, ref.bank_txn_id)
            if found is None:
                raise NotFound(f"bank {ref.bank_code} txn {ref.bank_txn_id} was not posted")
        else:
            raise InvalidArgument("key", "give payment_id or bank_transaction")
        assert found is not None
        return convert.payment_proto(found)

    async def ListPayments(
        self, request: payment_pb2.ListPaymentsRequest, context: Context
    ) -> payment_pb2.ListPaymentsResponse:
        if not (request.account.account_id or request.bank_code):
            raise InvalidArgument("account", "give account or bank_code")
        offset = _offset(request.page.page_token)
        size = min(request.page.page_size or _PAGE, _MAX_PAGE)
        day = (
            convert.to_date(request.settlement_date)
            if request.HasField("settlement_date")
            else None
        )
        statuses = [_STATUSES[s] for s in request.statuses if s in _STATUSES]
        found = await asyncio.to_thread(
            self.store.list_payments,
            account_id=request.account.account_id,
            bank_code=request.bank_code,
            settlement_date=day,
            statuses=statuses,
            offset=offset,
            limit=size + 1,
        )
        if request.HasField("period"):
            start = convert.from_timestamp(request.period.start)
            end = convert.from_timestamp(request.period.end)
            found = [p for p in found if start <= p.paid_at < end]
        more = len(found) > size
        reply = payment_pb2.ListPaymentsResponse(
            payments=[convert.payment_proto(p) for p in found[:size]]
        )
        reply.page.next_page_token = str(offset + size) if more else ""
        reply.page.total_size = -1
        return reply

    async def ReversePayment(
        self, request: payment_pb2.ReversePaymentRequest, context: Context
    ) -> payment_pb2.ReversePaymentResponse:
        _, applier, _, _ = self._running()
        if not request.reversal_txn_id:
            raise InvalidArgument("reversal_txn_id", "must not be empty")
        target = request.WhichOneof("target")
        if target is None:
            raise InvalidArgument("target", "give payment_id or bank_transaction")
        ref = request.bank_transaction
        if target == "bank_transaction" and not (ref.bank_code and ref.bank_txn_id):
            raise InvalidArgument("bank_transaction", "needs bank_code and bank_txn_id")
        result = await asyncio.to_thread(
            self.store.reverse,
            ReversalRequest(
                reversal_txn_id=request.reversal_txn_id,
                payment_id=request.payment_id,
                bank_code=ref.bank_code,
                bank_txn_id=ref.bank_txn_id,
                amount=request.amount.fen if request.HasField("amount") else None,
                reason=request.reason,
            ),
        )
        if not result.duplicate and result.payment is not None:
            applier.kick()  # take it off its bills
        reply = payment_pb2.ReversePaymentResponse(
            outcome=payment_pb2.ReverseOutcome.Value(f"REVERSE_OUTCOME_{result.outcome.name}"),
            duplicate=result.duplicate,
        )
        if result.payment is not None:
            reply.payment.CopyFrom(convert.payment_proto(result.payment))
        return reply

    async def Reconcile(
        self, request: payment_pb2.ReconcileRequest, context: Context
    ) -> payment_pb2.ReconciliationReport:
        _, _, _, reconciler = self._running()
        bank_code, day = _bank_day(request.bank_code, request)
        return await reconciler.run(bank_code, day, differences_only=request.differences_only)

    async def GetReconciliationReport(
        self, request: payment_pb2.GetReconciliationReportRequest, context: Context
    ) -> payment_pb2.ReconciliationReport:
        _, _, _, reconciler = self._running()
        bank_code, day = _bank_day(request.bank_code, request)
        return await reconciler.stored(bank_code, day, differences_only=request.differences_only)

    async def ResolveDifference(
        self, request: payment_pb2.ResolveDifferenceRequest, context: Context
    ) -> payment_pb2.ResolveDifferenceResponse:
        _, applier, _, reconciler = self._running()
        if not request.report_id:
            raise InvalidArgument("report_id", "must not be empty")
        if request.item_number <= 0:
            raise InvalidArgument("item_number", "must be a report item's number, from 1")
        # A proved identity is the operator; what the request says is kept only without one.
        operator = caller_identity(context) or request.operator
        item = await reconciler.resolve(
            request.report_id,
            request.item_number,
            convert.action_from_proto(request.action),
            operator=operator,
            reason=request.reason,
        )
        log.info(
            "report %s item %d resolved: %s by %s",
            request.report_id,
            request.item_number,
            payment_pb2.ResolutionAction.Name(request.action),
            operator,
        )
        applier.kick()  # a posted payment goes to its bills, a reversed one off them
        return payment_pb2.ResolveDifferenceResponse(item=item)


def _refusal(error: PowerbusError) -> payment_pb2.PostPaymentRefused:
    """A per-payment error of PostPayments; one PostPayment would not return fails the
    whole call (it is not the payment's fault)."""
    try:
        code = payment_pb2.PostRefusal.Value(f"POST_REFUSAL_{error.status.name}")
    except ValueError:
        raise error from None
    return payment_pb2.PostPaymentRefused(code=code, message=error.message)


_STATUSES = {
    payment_pb2.PAYMENT_STATUS_POSTED: PaymentStatus.POSTED,
    payment_pb2.PAYMENT_STATUS_REVERSED: PaymentStatus.REVERSED,
}


def _bank_day(bank_code: str, request: Any) -> tuple[str, dt.date]:
    if not bank_code:
        raise InvalidArgument("bank_code", "must not be empty")
    if not request.HasField("settlement_date"):
        raise InvalidArgument("settlement_date", "must be given")
    return bank_code, convert.to_date(request.settlement_date)


def _offset(token: str) -> int:
    if not token:
        return 0
    if not token.isdigit():
        raise InvalidArgument("page.page_token", f"{token!r} is not a token this node issued")
    return int(token)
