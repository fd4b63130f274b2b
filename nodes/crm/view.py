"""The panoramic customer view (客户全景视图), gathered through the bus for one audience.

Each section comes from its own source (billing: bills and arrears; payment: payments;
metering: readings; the node's own tickets), fetched in parallel, each under its own
deadline. A section whose source fails or is slow is left empty and listed as
unavailable, with why; the view itself always returns. Personal data is masked for the
audience before the view leaves this module.

::

    builder = ViewBuilder(customers=store, tickets=tickets, sources=lambda: Sources(...))
    view = await builder.build(request, Audience.AGENT)
    view.proto.unavailable_sections     # e.g. ["payments"]
    view.unavailable["payments"]        # "UNAVAILABLE: no healthy node of ..."
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import grpc

from powerbus.billing.v1 import billing_pb2
from powerbus.bus.kernel.errors import PowerbusError
from powerbus.common.v1 import common_pb2
from powerbus.crm.v1 import crm_pb2
from powerbus.nodes.crm import masking, sections
from powerbus.nodes.crm.offers import Offer, orderable_services
from powerbus.nodes.crm.segments import MonthlyKwh, SegmentProfile, segment
from powerbus.nodes.crm.store.customers import CustomerStore
from powerbus.nodes.crm.tickets.lifecycle import OPEN_STATUSES
from powerbus.nodes.crm.tickets.service import TicketService

if TYPE_CHECKING:  # the async stub types exist only in the generated .pyi files
    from powerbus.billing.v1.billing_pb2_grpc import BillingAsyncStub
    from powerbus.metering.v1.metering_pb2_grpc import MeteringAsyncStub
    from powerbus.payment.v1.payment_pb2_grpc import PaymentsAsyncStub

__all__ = ["AUDIENCE_SECTIONS", "PanoramicView", "Sources", "ViewBuilder", "segment_proto"]

_AUDIENCE_WIRE = {
    masking.Audience.CUSTOMER: crm_pb2.VIEW_AUDIENCE_CUSTOMER,
    masking.Audience.AGENT: crm_pb2.VIEW_AUDIENCE_AGENT,
}


def segment_proto(profile: SegmentProfile) -> crm_pb2.CustomerSegment:
    """A segment profile on the wire (enum names are the profile's values, upper-cased)."""
    return crm_pb2.CustomerSegment(
        usage_class=crm_pb2.UsageClass.Value(f"USAGE_CLASS_{profile.usage_class.name}"),
        traits=sorted(crm_pb2.UsageTrait.Value(f"USAGE_TRAIT_{t.name}") for t in profile.traits),
        yearly_kwh=profile.yearly_kwh or 0.0,
    )


log = logging.getLogger(__name__)

_DEFAULT_BILLS, _DEFAULT_PAYMENTS, _DEFAULT_MONTHS = 6, 10, 12
_MAX_HISTORY = 60

AUDIENCE_SECTIONS = {
    # Arrears are fetched for the customer too: they make the accounts' balance.
    masking.Audience.CUSTOMER: ("bills", "readings", "arrears"),
    masking.Audience.AGENT: ("bills", "payments", "readings", "tickets", "arrears"),
}


@dataclass(frozen=True)
class Sources:
    """Stubs of the services the view reads, on the node's bus channel."""

    billing: BillingAsyncStub
    payments: PaymentsAsyncStub
    metering: MeteringAsyncStub


@dataclass
class PanoramicView:
    """A view for one audience: the wire message plus what the wire has no field for yet."""

    audience: masking.Audience
    proto: crm_pb2.CustomerView
    id_number: str
    """Masked: only the last four characters show."""
    profile: SegmentProfile | None
    """Usage class and traits (agent audience), ``None`` while readings are unavailable."""
    offers: list[Offer]
    """Services the customer can order (customer audience)."""
    unavailable: dict[str, str] = field(default_factory=dict)
    """Section name → why it is empty."""


class ViewBuilder:
    """Builds views; ``section_timeout`` bounds each section, and a call's own deadline
    shortens it."""

    def __init__(
        self,
        *,
        customers: CustomerStore,
        tickets: TicketService,
        sources: Callable[[], Sources],
        section_timeout: float,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.customers = customers
        self.tickets = tickets
        self.sources = sources
        self.section_timeout = section_timeout
        self.clock = clock

    async def build(
        self,
        request: crm_pb2.GetCustomerViewRequest,
        audience: masking.Audience,
        *,
        time_left: float | None = None,
    ) -> PanoramicView:
        """The view of ``request.customer_id``; :class:`NotFound` for an unknown customer."""
        customer = await asyncio.to_thread(self.customers.get_customer, request.customer_id)
        accounts = await asyncio.to_thread(self.customers.list_accounts, request.customer_id)
        id_number = await asyncio.to_thread(self.customers.id_number, request.customer_id)
        timeout = self.section_timeout
        if time_left is not None:
            # Leave a little of the caller's deadline for assembling and replying.
            timeout = max(0.05, min(timeout, time_left * 0.8))
        wanted = AUDIENCE_SECTIONS[audience]
        fetched, unavailable = await self._fetch(request, wanted, accounts, timeout)
        view = self._assemble(customer, accounts, fetched, unavailable, audience)
        usage: list[sections.MeterUsage] = fetched.get("readings", [])
        profile = _profile(customer, usage) if "readings" in fetched else None
        offers = orderable_services(
            accounts,
            owing_fen=view.total_due.fen,
            peak_share=_peak_share(usage),
        )
        result = PanoramicView(
            audience=audience,
            proto=view,
            id_number=masking.mask_id_number(id_number),
            profile=profile if audience is masking.Audience.AGENT else None,
            offers=offers if audience is masking.Audience.CUSTOMER else [],
            unavailable=unavailable,
        )
        view.audience = _AUDIENCE_WIRE[audience]
        if result.profile is not None:
            view.segment.CopyFrom(segment_proto(result.profile))
        masking.mask_for(result.proto, audience)
        return result

    async def _fetch(
        self,
        request: crm_pb2.GetCustomerViewRequest,
        wanted: Sequence[str],
        accounts: Sequence[crm_pb2.Account],
        timeout: float,
    ) -> tuple[dict[str, Any], dict[str, str]]:
        bills = _bounded(request.recent_bills, _DEFAULT_BILLS)
        payments = _bounded(request.recent_payments, _DEFAULT_PAYMENTS)
        months = _bounded(request.months_of_usage, _DEFAULT_MONTHS)
        meters = [m for a in accounts for m in a.meters]
        now = self.clock()
        src = self.sources()
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "bills": lambda: sections.fetch_bills(src.billing, accounts, bills, timeout),
            "arrears": lambda: sections.fetch_arrears(src.billing, accounts, timeout),
            "payments": lambda: sections.fetch_payments(src.payments, accounts, payments, timeout),
            "readings": lambda: sections.fetch_readings(src.metering, meters, months, timeout, now),
            "tickets": lambda: asyncio.to_thread(self._open_tickets, request.customer_id),
        }
        names = [n for n in calls if n in wanted]
        outcomes = await asyncio.gather(*(_section(n, calls[n](), timeout) for n in names))
        fetched: dict[str, Any] = {}
        unavailable: dict[str, str] = {}
        for name, (ok, value) in zip(names, outcomes, strict=True):
            if ok:
                fetched[name] = value
            else:
                unavailable[name] = value
        if unavailable:
            log.warning(
                "view of %s: sections unavailable: %s",
                request.customer_id,
                "; ".join(f"{k} ({v})" for k, v in sorted(unavailable.items())),
            )
        return fetched, unavailable

    def _open_tickets(self, customer_id: str) -> list[crm_pb2.ServiceTicket]:
        listed = self.tickets.list_tickets(
            crm_pb2.ListTicketsRequest(customer_id=customer_id, statuses=sorted(OPEN_STATUSES))
        )
        return list(listed.tickets)

    def _assemble(
        self,
        customer: crm_pb2.Customer,
        accounts: Sequence[crm_pb2.Account],
        fetched: dict[str, Any],
        unavailable: dict[str, str],
        audience: masking.Audience,
    ) -> crm_pb2.CustomerView:
        view = crm_pb2.CustomerView(customer=customer, accounts=accounts)
        view.generated_at.FromDatetime(self.clock())
        view.recent_bills.extend(fetched.get("bills", []))
        view.recent_payments.extend(fetched.get("payments", []))
        view.readings.extend(u.summary for u in fetched.get("readings", []))
        view.open_tickets.extend(fetched.get("tickets", []))
        arrears: dict[str, billing_pb2.Arrears] = fetched.get("arrears", {})
        for account in view.accounts:
            owed = arrears.get(account.account_id)
            if owed is not None:
                debt = owed.principal.fen + owed.late_fee.fen
                account.balance.CopyFrom(common_pb2.Money(fen=owed.credit_balance.fen - debt))
        owing = [a for a in arrears.values() if a.total_due.fen > 0]
        view.total_due.fen = sum(a.total_due.fen for a in owing)
        if audience is masking.Audience.AGENT:
            view.arrears.extend(owing)
        # The wire names sections only; the reasons are logged and kept in the domain view.
        view.unavailable_sections.extend(sorted(unavailable))
        return view


async def _section(name: str, call: Awaitable[Any], timeout: float) -> tuple[bool, Any]:
    """``(True, value)``, or ``(False, why)`` when the source failed or was too slow."""
    try:
        # The calls carry ``timeout`` as their deadline; this bound also covers the
        # local work and a source that ignores deadlines.
        return True, await asyncio.wait_for(call, timeout + 0.25)
    except grpc.aio.AioRpcError as exc:
        return False, masking.scrub(f"{exc.code().name}: {exc.details()}")
    except PowerbusError as exc:
        return False, masking.scrub(f"{type(exc).__name__}: {exc.message}")
    except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
        return False, f"no answer within {timeout:.2f}s"


def _bounded(requested: int, default: int) -> int:
    return default if requested <= 0 else min(requested, _MAX_HISTORY)


def _peak_share(usage: Sequence[sections.MeterUsage]) -> float | None:
    total = sum(u.total_kwh for u in usage)
    return None if total <= 0 else sum(u.peak_kwh for u in usage) / total


def _profile(customer: crm_pb2.Customer, usage: Sequence[sections.MeterUsage]) -> SegmentProfile:
    by_month: dict[tuple[int, int], float] = {}
    for meter in usage:
        for m in meter.months:
            by_month[(m.year, m.month)] = by_month.get((m.year, m.month), 0.0) + m.kwh
    months = [MonthlyKwh(y, m, kwh) for (y, m), kwh in by_month.items()]
    residential = customer.kind != crm_pb2.CUSTOMER_KIND_ORGANIZATION
    return segment(months, residential=residential, peak_share=_peak_share(usage))
