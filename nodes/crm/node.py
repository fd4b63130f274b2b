"""The CRM node: ``powerbus.crm.v1.Customers`` and ``ServiceTickets`` over SQLAlchemy.

The servicers convert and delegate: customers and accounts to
:class:`~powerbus.nodes.crm.store.customers.CustomerStore`, tickets to
:class:`~powerbus.nodes.crm.tickets.service.TicketService`, the panoramic view to
:class:`~powerbus.nodes.crm.view.ViewBuilder`, which calls billing, payment and metering
through the bus. Database work runs in worker threads so the event loop keeps serving.

::

    powerbus node crm --bus 127.0.0.1:50051 --id crm-1 --db sqlite:///crm.db \\
        --seed 1000 --meters meters.csv

With ``--events-out HOST:PORT`` (the bus's events socket) it subscribes to
``metering.end_device_event.reported`` and opens fault-repair tickets for power-off and
tamper events (:mod:`~powerbus.nodes.crm.fault_feed`).

The view's audience comes from the ``x-powerbus-audience`` metadata key (``customer``,
the default, or ``agent``) until crm.proto carries it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import grpc
from sqlalchemy.engine import Engine

from powerbus.billing.v1 import billing_pb2_grpc
from powerbus.bus.kernel.database import create_engine
from powerbus.bus.kernel.errors import ConfigError, InvalidArgument
from powerbus.bus.kernel.metadata import CALLER_KEY
from powerbus.crm.v1 import crm_pb2, crm_pb2_grpc
from powerbus.metering.v1 import metering_pb2, metering_pb2_grpc
from powerbus.nodes.crm import masking, seed
from powerbus.nodes.crm.config import CrmSettings
from powerbus.nodes.crm.fault_feed import FaultFeed
from powerbus.nodes.crm.store.customers import CustomerStore
from powerbus.nodes.crm.store.migrations import MIGRATIONS
from powerbus.nodes.crm.tickets.calendar import WorkingCalendar
from powerbus.nodes.crm.tickets.monitor import OverdueHook, SlaMonitor, log_overdue
from powerbus.nodes.crm.tickets.service import TicketService
from powerbus.nodes.crm.view import PanoramicView, Sources, ViewBuilder
from powerbus.nodes.sdk.config import NodeConfig
from powerbus.nodes.sdk.node import BusClient, ConfiguredNode, bus_address_of
from powerbus.payment.v1 import payment_pb2_grpc

__all__ = ["AUDIENCE_KEY", "CrmNode", "audience_of"]

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]

AUDIENCE_KEY = "x-powerbus-audience"
"""Metadata key naming the view's audience: ``customer`` (default) or ``agent``."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


class CrmNode(
    ConfiguredNode[CrmSettings], crm_pb2_grpc.CustomersServicer, crm_pb2_grpc.ServiceTicketsServicer
):
    """``powerbus node crm``: customers, accounts, the panoramic view and service tickets.

    >>> sorted(s.name for s in CrmNode.served_services())
    ['powerbus.crm.v1.Customers', 'powerbus.crm.v1.ServiceTickets']
    >>> [d.service for d in CrmNode.dependencies()]
    ['powerbus.billing.v1.Billing', 'powerbus.metering.v1.Metering', 'powerbus.payment.v1.Payments']
    """

    kind = "crm"
    settings_type = CrmSettings

    # Optional: the view degrades section by section without them.
    billing = BusClient(billing_pb2_grpc.BillingStub, required=False)
    payments = BusClient(payment_pb2_grpc.PaymentsStub, required=False)
    metering = BusClient(metering_pb2_grpc.MeteringStub, required=False)

    def __init__(
        self,
        *,
        settings: CrmSettings,
        clock: Callable[[], datetime] = _now,
        overdue_hook: OverdueHook = log_overdue,
        bus_address: str | None = None,
    ) -> None:
        self.settings = settings
        self._bus_address = bus_address
        self._feed: FaultFeed | None = None
        self.clock = clock
        self.overdue_hook = overdue_hook
        self._engine: Engine | None = None
        self._customers: CustomerStore | None = None
        self._tickets: TicketService | None = None
        self._views: ViewBuilder | None = None
        self._monitor: SlaMonitor | None = None
        self._filter = masking.ScrubbingFilter()

    @classmethod
    def from_settings(cls, settings: CrmSettings, config: NodeConfig) -> CrmNode:
        return cls(settings=settings, bus_address=bus_address_of(config))

    # -- lifecycle ---------------------------------------------------------------------

    async def on_start(self) -> None:
        self._install_filter()
        settings = self.settings
        calendar = WorkingCalendar.load(settings.calendar)
        engine = self._engine = create_engine(settings.db)
        await asyncio.to_thread(MIGRATIONS.run, engine)
        self._customers = CustomerStore(engine, clock=self.clock)
        self._tickets = TicketService(
            engine,
            calendar=calendar,
            node_id=self.node_id,
            clock=self.clock,
            slot_capacity=settings.slot_capacity,
        )
        self._views = ViewBuilder(
            customers=self._customers,
            tickets=self._tickets,
            sources=self._sources,
            section_timeout=settings.section_timeout.total_seconds(),
            clock=self.clock,
        )
        if settings.seed:
            meters = seed.read_meters(settings.meters) if settings.meters else []
            people = seed.generate(settings.seed, seed=settings.seed_rng, meters=meters)
            await asyncio.to_thread(seed.load, self._customers, people)
        self._monitor = SlaMonitor(
            self._tickets,
            interval=settings.sla_check_interval.total_seconds(),
            hook=self.overdue_hook,
        )
        await self._monitor.start()
        await self._start_feed(engine)

    async def _start_feed(self, engine: Engine) -> None:
        addresses = [a.strip() for a in self.settings.events_out.split(",") if a.strip()]
        if not addresses:
            return
        if self._bus_address is None:
            raise ConfigError("events_out: subscribing to events needs the node's --bus")
        feed = FaultFeed(
            engine=engine,
            name=f"{self.node_id}-faults",
            bus=self._bus_address,
            channel=self.bus.channel,  # the node's own: its certificate and token
            events_out=addresses,
            handle=self.tickets.on_end_device_event,
        )
        await feed.start()
        self._feed = feed

    async def on_stop(self) -> None:
        feed, self._feed = self._feed, None
        if feed is not None:
            await feed.stop()
        monitor, self._monitor = self._monitor, None
        if monitor is not None:
            await monitor.stop()
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.dispose()
        self._remove_filter()

    def _install_filter(self) -> None:
        # Filters do not propagate to child loggers: put one on each of this package's.
        for name in _crm_logger_names():
            logging.getLogger(name).addFilter(self._filter)

    def _remove_filter(self) -> None:
        for name in _crm_logger_names():
            logging.getLogger(name).removeFilter(self._filter)

    def _sources(self) -> Sources:
        return Sources(billing=self.billing, payments=self.payments, metering=self.metering)

    @property
    def customers(self) -> CustomerStore:
        """The customer store (running nodes only)."""
        if self._customers is None:
            raise RuntimeError("CrmNode is not running")
        return self._customers

    @property
    def tickets(self) -> TicketService:
        """The ticket service (running nodes only)."""
        if self._tickets is None:
            raise RuntimeError("CrmNode is not running")
        return self._tickets

    @property
    def monitor(self) -> SlaMonitor:
        """The SLA monitor loop (running nodes only)."""
        if self._monitor is None:
            raise RuntimeError("CrmNode is not running")
        return self._monitor

    # -- events --------------------------------------------------------------------------

    async def on_end_device_event(
        self, event: metering_pb2.EndDeviceEvent
    ) -> crm_pb2.ServiceTicket | None:
        """Open (or find) the fault-repair ticket for a power-off or tamper event (what
        the ``--events-out`` subscription does for each event it receives)."""
        return await asyncio.to_thread(self.tickets.on_end_device_event, event)

    # -- Customers ---------------------------------------------------------------------

    async def GetCustomer(
        self, request: crm_pb2.GetCustomerRequest, context: Context
    ) -> crm_pb2.Customer:
        return await asyncio.to_thread(self.customers.get_customer, request.customer_id)

    async def SearchCustomers(
        self, request: crm_pb2.SearchCustomersRequest, context: Context
    ) -> crm_pb2.SearchCustomersResponse:
        return await asyncio.to_thread(self.customers.search, request)

    async def PutCustomer(
        self, request: crm_pb2.PutCustomerRequest, context: Context
    ) -> crm_pb2.Customer:
        return await asyncio.to_thread(self.customers.put_customer, request.customer)

    async def GetAccount(
        self, request: crm_pb2.GetAccountRequest, context: Context
    ) -> crm_pb2.Account:
        return await asyncio.to_thread(self.customers.get_account, request.account_id)

    async def ListAccounts(
        self, request: crm_pb2.ListAccountsRequest, context: Context
    ) -> crm_pb2.ListAccountsResponse:
        return await asyncio.to_thread(self.customers.page_accounts, request)

    async def PutAccount(
        self, request: crm_pb2.PutAccountRequest, context: Context
    ) -> crm_pb2.Account:
        return await asyncio.to_thread(self.customers.put_account, request.account)

    async def GetCustomerView(
        self, request: crm_pb2.GetCustomerViewRequest, context: Context
    ) -> crm_pb2.CustomerView:
        return (await self.customer_view(request, audience_of(context), context)).proto

    async def customer_view(
        self,
        request: crm_pb2.GetCustomerViewRequest,
        audience: masking.Audience,
        context: Context | None = None,
    ) -> PanoramicView:
        """The view with what the wire cannot carry yet (segment, offers, masked ID)."""
        if self._views is None:
            raise RuntimeError("CrmNode is not running")
        time_left = context.time_remaining() if context is not None else None
        return await self._views.build(request, audience, time_left=time_left)

    # -- ServiceTickets ------------------------------------------------------------------

    async def OpenTicket(
        self, request: crm_pb2.OpenTicketRequest, context: Context
    ) -> crm_pb2.ServiceTicket:
        return await asyncio.to_thread(self.tickets.open, request, actor=_caller(context))

    async def GetTicket(
        self, request: crm_pb2.GetTicketRequest, context: Context
    ) -> crm_pb2.ServiceTicket:
        return await asyncio.to_thread(self.tickets.get, request.ticket_id)

    async def UpdateTicketStatus(
        self, request: crm_pb2.UpdateTicketStatusRequest, context: Context
    ) -> crm_pb2.ServiceTicket:
        if not request.actor:
            request.actor = _caller(context)
        return await asyncio.to_thread(self.tickets.update, request)

    async def ListTickets(
        self, request: crm_pb2.ListTicketsRequest, context: Context
    ) -> crm_pb2.ListTicketsResponse:
        return await asyncio.to_thread(self.tickets.list_tickets, request)


def audience_of(context: Context) -> masking.Audience:
    """The audience a call asks for (``x-powerbus-audience``), ``customer`` by default."""
    for key, value in context.invocation_metadata() or ():
        if key == AUDIENCE_KEY:
            text = value.decode() if isinstance(value, bytes) else value
            try:
                return masking.Audience(text)
            except ValueError:
                choices = ", ".join(a.value for a in masking.Audience)
                raise InvalidArgument(AUDIENCE_KEY, f"{text!r} is not one of {choices}") from None
    return masking.Audience.CUSTOMER


def _caller(context: Context) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == CALLER_KEY:
            return value.decode() if isinstance(value, bytes) else value
    return ""


def _crm_logger_names() -> list[str]:
    package = __name__.rpartition(".")[0]
    known = [n for n in logging.Logger.manager.loggerDict if n.startswith(package)]
    return sorted({package, *known})
