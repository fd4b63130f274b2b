"""``powerbus node billing``: serves ``powerbus.billing.v1.Billing``.

Handlers convert and delegate: pricing to the tariff engine, tariffs to
:class:`~powerbus.nodes.billing.tariffs.TariffBook`, runs to
:class:`~powerbus.nodes.billing.runs.BillingRuns`, bills and payments to
:class:`~powerbus.nodes.billing.bills.Bills` and
:class:`~powerbus.nodes.billing.payments.Payments`. Database work runs in threads, so
the event loop keeps serving while a batch is written. Errors are
:class:`~powerbus.bus.kernel.errors.PowerbusError` s; the SDK turns them into statuses.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from powerbus.billing.v1 import billing_pb2, billing_pb2_grpc
from powerbus.bus.kernel.database import create_engine
from powerbus.bus.kernel.errors import ConfigError, InvalidArgument
from powerbus.common.v1 import common_pb2
from powerbus.crm.v1 import crm_pb2_grpc
from powerbus.metering.v1 import metering_pb2_grpc
from powerbus.nodes.billing.bills import Bills, BillStatus
from powerbus.nodes.billing.convert import (
    date_from_proto,
    date_to_proto,
    enum_name,
    lines_to_proto,
    money,
    tariff_from_proto,
    tariff_to_proto,
    timestamp_from_proto,
    usage_from_quote,
)
from powerbus.nodes.billing.events import BillingEvents, NoOutbox
from powerbus.nodes.billing.messages import (
    allocations_to_proto,
    arrears_to_proto,
    bill_to_proto,
    run_to_proto,
)
from powerbus.nodes.billing.outbox import OutboxEvents
from powerbus.nodes.billing.payments import Payments
from powerbus.nodes.billing.run_store import RunRequest
from powerbus.nodes.billing.runs import BillingRuns
from powerbus.nodes.billing.settings import BillingSettings
from powerbus.nodes.billing.sources import AccountSource, CrmAccounts, MeteringUsage, UsageSource
from powerbus.nodes.billing.store.migrations import MIGRATIONS
from powerbus.nodes.billing.tariff import CustomerClass, Tariff, quote
from powerbus.nodes.billing.tariff_book import TariffBook
from powerbus.nodes.sdk.config import NodeConfig
from powerbus.nodes.sdk.events import Outbox, Publisher, open_event_tables
from powerbus.nodes.sdk.node import BusClient, ConfiguredNode, bus_address_of

__all__ = ["BillingNode"]

log = logging.getLogger(__name__)

Context = Any
_DEFAULT_PAGE = 100
_MAX_PAGE = 1000


def _page(page: Any) -> tuple[int, int]:
    """(offset, limit) of a ``PageRequest``; the token is the offset as text."""
    token = page.page_token
    if token and not token.isdigit():
        raise InvalidArgument("page.page_token", f"not a token this node issued: {token!r}")
    size = page.page_size or _DEFAULT_PAGE
    if size < 0:
        raise InvalidArgument("page.page_size", f"must not be negative, got {size}")
    return int(token or 0), min(size, _MAX_PAGE)


def _next_token(offset: int, limit: int, total: int) -> str:
    return str(offset + limit) if offset + limit < total else ""


class BillingNode(ConfiguredNode[BillingSettings], billing_pb2_grpc.BillingServicer):
    """Quotes, tariffs, billing runs, bills, arrears and payments.

    >>> [s.name for s in BillingNode.served_services()]
    ['powerbus.billing.v1.Billing']
    >>> [(d.service, d.required) for d in BillingNode.dependencies()]
    [('powerbus.crm.v1.Customers', False), ('powerbus.metering.v1.Metering', False)]
    """

    kind = "billing"
    settings_type = BillingSettings

    # Not required: Quote, tariffs, bills and payments work without them; a run without
    # them fails with the reason (SourceMissing).
    crm = BusClient(crm_pb2_grpc.CustomersStub, required=False)
    metering = BusClient(metering_pb2_grpc.MeteringStub, required=False)

    def __init__(
        self,
        *,
        settings: BillingSettings,
        events: BillingEvents | None = None,
        accounts: AccountSource | None = None,
        usage: UsageSource | None = None,
        bus_address: str | None = None,
    ) -> None:
        self.settings = settings
        self._events: BillingEvents = events or NoOutbox()
        self._bus_address = bus_address
        self._publisher: Publisher | None = None
        self._account_source = accounts
        self._usage_source = usage
        self._engine: Engine | None = None
        self._runs: BillingRuns | None = None
        self._book: TariffBook | None = None
        self._bills: Bills | None = None
        self._payments: Payments | None = None
        self._zone = ZoneInfo(settings.time_zone)

    @classmethod
    def from_settings(cls, settings: BillingSettings, config: NodeConfig) -> BillingNode:
        return cls(settings=settings, bus_address=bus_address_of(config))

    def metadata(self) -> Mapping[str, str]:
        return {"events": type(self._events).__name__}

    async def on_start(self) -> None:
        engine = self._engine = create_engine(self.settings.db)
        await asyncio.to_thread(MIGRATIONS.run, engine)
        await self._start_publishing(engine)
        if isinstance(self._events, NoOutbox):
            log.warning(
                "billing: no events outbox configured; bill and run events are not published"
            )
        timeout = self.settings.call_timeout.total_seconds()
        accounts = self._account_source or CrmAccounts(
            self.crm, timeout=timeout, concurrency=self.settings.concurrency
        )
        usage = self._usage_source or MeteringUsage(self.metering, timeout=timeout)
        self._book = TariffBook(engine)
        self._bills = Bills(engine)
        self._payments = Payments(engine)
        self._runs = BillingRuns(
            engine=engine,
            book=self._book,
            accounts=accounts,
            usage=usage,
            events=self._events,
            settings=self.settings,
            owner=self.node_id,
        )
        await self._runs.start()

    async def _start_publishing(self, engine: Engine) -> None:
        """With ``events_in`` set: the outbox in the billing store and its relay to the bus,
        started before any run can write an event, so numbering continues the bus's."""
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
        self._events = OutboxEvents(outbox, zone=self._zone)

    async def on_stop(self) -> None:
        if self._runs is not None:
            await self._runs.stop()
        if self._publisher is not None:
            await self._publisher.stop()
            self._publisher = None
        if self._engine is not None:
            self._engine.dispose()
        self._engine = self._runs = None

    # Parts, available once started.

    @property
    def book(self) -> TariffBook:
        assert self._book is not None, "billing node not started"
        return self._book

    @property
    def runs(self) -> BillingRuns:
        assert self._runs is not None, "billing node not started"
        return self._runs

    @property
    def bills(self) -> Bills:
        assert self._bills is not None, "billing node not started"
        return self._bills

    @property
    def payments(self) -> Payments:
        assert self._payments is not None, "billing node not started"
        return self._payments

    def _day(self, message: Any, field: str, present: bool) -> date:
        if present:
            return date_from_proto(message, field=field)
        return datetime.now(self._zone).date()

    # Tariffs and quotes.

    async def Quote(
        self, request: billing_pb2.QuoteRequest, context: Context
    ) -> billing_pb2.QuoteResponse:
        if not request.tariff_id:
            raise InvalidArgument("tariff_id", "must not be empty")
        day = self._day(request.billing_date, "billing_date", request.HasField("billing_date"))
        catalogue = await asyncio.to_thread(self.book.catalogue)
        version = catalogue.version(request.tariff_id, day)
        bill = quote(version, usage_from_quote(request), billing_date=day)
        return billing_pb2.QuoteResponse(
            tariff_id=bill.tariff_id,
            effective_from=date_to_proto(bill.effective_from),
            lines=lines_to_proto(bill.lines),
            total=money(bill.total_fen),
            kwh=float(bill.kwh),
            power_factor=common_pb2.Decimal(
                value="" if bill.power_factor is None else str(bill.power_factor)
            ),
        )

    async def ListTariffs(
        self, request: billing_pb2.ListTariffsRequest, context: Context
    ) -> billing_pb2.ListTariffsResponse:
        offset, limit = _page(request.page)
        day = self._day(request.as_of, "as_of", request.HasField("as_of"))
        wanted_class = enum_name(request.customer_class, billing_pb2.CustomerClass)
        catalogue = await asyncio.to_thread(self.book.catalogue)
        found: list[Tariff] = []
        for tariff_id in catalogue.ids():
            versions = catalogue.versions(tariff_id)
            if not request.all_versions:
                versions = tuple(v for v in versions if v.effective_on(day))
            found += [
                v
                for v in versions
                if (wanted_class is None or v.customer_class is CustomerClass(wanted_class))
                and (not request.region or v.region == request.region)
            ]
        page = found[offset : offset + limit]
        return billing_pb2.ListTariffsResponse(
            tariffs=[tariff_to_proto(t) for t in page],
            page=common_pb2.PageResponse(
                next_page_token=_next_token(offset, limit, len(found)), total_size=len(found)
            ),
        )

    async def GetTariff(
        self, request: billing_pb2.GetTariffRequest, context: Context
    ) -> billing_pb2.Tariff:
        if not request.tariff_id:
            raise InvalidArgument("tariff_id", "must not be empty")
        day = self._day(request.as_of, "as_of", request.HasField("as_of"))
        catalogue = await asyncio.to_thread(self.book.catalogue)
        return tariff_to_proto(catalogue.version(request.tariff_id, day))

    async def PutTariff(
        self, request: billing_pb2.PutTariffRequest, context: Context
    ) -> billing_pb2.Tariff:
        if not request.HasField("tariff"):
            raise InvalidArgument("tariff", "must be set")
        tariff = tariff_from_proto(request.tariff)
        return tariff_to_proto(await asyncio.to_thread(self.book.put, tariff))

    # Billing runs.

    async def StartBillingRun(
        self, request: billing_pb2.StartBillingRunRequest, context: Context
    ) -> billing_pb2.BillingRun:
        if not request.HasField("period"):
            raise InvalidArgument("period", "must be set")
        run = await self.runs.begin(
            RunRequest(
                run_id=request.run_id,
                start=timestamp_from_proto(request.period.start),
                end=timestamp_from_proto(request.period.end),
                account_ids=tuple(request.account_ids),
                due_date=date_from_proto(request.due_date, field="due_date")
                if request.HasField("due_date")
                else None,
            )
        )
        return run_to_proto(run)

    async def GetBillingRun(
        self, request: billing_pb2.GetBillingRunRequest, context: Context
    ) -> billing_pb2.BillingRun:
        return run_to_proto(await self.runs.get(request.run_id))

    # Bills.

    async def GetBill(
        self, request: billing_pb2.GetBillRequest, context: Context
    ) -> billing_pb2.Bill:
        return bill_to_proto(await asyncio.to_thread(self.bills.get, request.bill_id))

    async def VoidBill(
        self, request: billing_pb2.VoidBillRequest, context: Context
    ) -> billing_pb2.Bill:
        if not request.bill_id:
            raise InvalidArgument("bill_id", "must not be empty")
        voided = await asyncio.to_thread(self.bills.void, request.bill_id, reason=request.reason)
        return bill_to_proto(voided)

    async def ListBills(
        self, request: billing_pb2.ListBillsRequest, context: Context
    ) -> billing_pb2.ListBillsResponse:
        account_id = request.account.account_id
        if not account_id:
            raise InvalidArgument("account", "must not be empty")
        offset, limit = _page(request.page)
        statuses = []
        for i, value in enumerate(request.statuses):
            name = enum_name(value, billing_pb2.BillStatus)
            if name is None:
                raise InvalidArgument(f"statuses[{i}]", "must not be UNSPECIFIED")
            statuses.append(BillStatus(name))
        start = end = None
        if request.HasField("period"):
            start = timestamp_from_proto(request.period.start)
            end = timestamp_from_proto(request.period.end)
        found, total = await asyncio.to_thread(
            self.bills.list,
            account_id,
            start=start,
            end=end,
            statuses=statuses,
            offset=offset,
            limit=limit,
        )
        return billing_pb2.ListBillsResponse(
            bills=[bill_to_proto(b) for b in found],
            page=common_pb2.PageResponse(
                next_page_token=_next_token(offset, limit, total), total_size=total
            ),
        )

    # Arrears and payments.

    async def GetArrears(
        self, request: billing_pb2.GetArrearsRequest, context: Context
    ) -> billing_pb2.Arrears:
        day = self._day(request.as_of, "as_of", request.HasField("as_of"))
        statement = await asyncio.to_thread(self.payments.arrears, request.account.account_id, day)
        return arrears_to_proto(statement)

    async def ApplyPayment(
        self, request: billing_pb2.ApplyPaymentRequest, context: Context
    ) -> billing_pb2.ApplyPaymentResponse:
        applied = await asyncio.to_thread(
            lambda: self.payments.apply(
                payment_id=request.payment_id,
                account_id=request.account.account_id,
                amount_fen=request.amount.fen,
                paid_at=timestamp_from_proto(request.paid_at)
                if request.HasField("paid_at")
                else None,
                bill_ids=tuple(request.bill_ids),
            )
        )
        return billing_pb2.ApplyPaymentResponse(
            allocations=allocations_to_proto(applied.allocations),
            unallocated=money(applied.unallocated_fen),
            duplicate=applied.duplicate,
        )

    async def UnapplyPayment(
        self, request: billing_pb2.UnapplyPaymentRequest, context: Context
    ) -> billing_pb2.UnapplyPaymentResponse:
        released = await asyncio.to_thread(
            self.payments.unapply, request.payment_id, reason=request.reason
        )
        return billing_pb2.UnapplyPaymentResponse(
            released=allocations_to_proto(released.allocations),
            unallocated=money(released.unallocated_fen),
        )
