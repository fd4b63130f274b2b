"""Where a billing run gets its accounts (CRM) and usage (metering): through the bus.

Both are small protocols, :class:`AccountSource` and :class:`UsageSource`, with one
implementation each over the generated stubs (``powerbus.crm.v1.Customers`` and
``powerbus.metering.v1.Metering``); tests may pass their own. Every call has a deadline.
A source that is not on the bus at all (UNIMPLEMENTED: nobody registered the service)
raises :class:`SourceMissing`, which fails the whole run with that reason; one account
that cannot be read fails just that account, retriable or not as the status says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

import grpc

from powerbus.billing.v1 import billing_pb2
from powerbus.bus.kernel.errors import PowerbusError, Unavailable
from powerbus.bus.transport.grpc_status import from_grpc
from powerbus.common.v1 import common_pb2
from powerbus.crm.v1 import crm_pb2, crm_pb2_grpc
from powerbus.load_balancer import StatusCode
from powerbus.metering.v1 import metering_pb2, metering_pb2_grpc
from powerbus.nodes.billing.convert import decimal_from_proto, enum_name
from powerbus.nodes.billing.tariff import DemandBasis, TouPeriod, TouWindow, kwh_from_wire

__all__ = [
    "AccountFailure",
    "AccountInfo",
    "AccountSource",
    "CrmAccounts",
    "MeterUsage",
    "MeteringUsage",
    "SourceMissing",
    "UsageSource",
]

_RETRIABLE = {StatusCode.UNAVAILABLE, StatusCode.DEADLINE_EXCEEDED, StatusCode.RESOURCE_EXHAUSTED}


class SourceMissing(Unavailable):
    """A service a billing run needs is not on the bus; the run fails with this reason."""


@dataclass(frozen=True, kw_only=True)
class AccountInfo:
    """What billing needs of a CRM account."""

    account_id: str
    tariff_id: str
    active: bool
    meter_ids: tuple[str, ...]
    tier_allowance_kwh: Decimal = Decimal(0)
    demand_basis: DemandBasis | None = None
    contract_demand_kw: Decimal = Decimal(0)
    capacity_kva: Decimal = Decimal(0)
    power_factor_standard: Decimal | None = None


@dataclass(frozen=True)
class AccountFailure:
    """Why one account could not be read."""

    reason: str
    retriable: bool


@dataclass(frozen=True, kw_only=True)
class MeterUsage:
    """Billing determinants of one meter over the period."""

    kwh: Decimal
    tou_kwh: Mapping[TouPeriod, Decimal] = field(default_factory=dict)
    reactive_kvarh: Decimal = Decimal(0)
    max_demand_kw: Decimal = Decimal(0)
    estimated: bool = False
    complete: bool = True


class AccountSource(Protocol):
    """Accounts by id, and the ids of every billable account (a run that names none)."""

    async def accounts(
        self, account_ids: Sequence[str]
    ) -> dict[str, AccountInfo | AccountFailure]: ...

    async def all_billable(self) -> list[str]:
        """Every account a run bills (active or suspended), by id; raises
        :class:`SourceMissing` or :class:`~powerbus.bus.kernel.errors.PowerbusError`."""
        ...


class UsageSource(Protocol):
    """Usage of meters over a period, split by TOU windows."""

    async def usage(
        self,
        meter_ids: Sequence[str],
        *,
        start: datetime,
        end: datetime,
        windows: Sequence[TouWindow],
        time_zone: str,
    ) -> dict[str, MeterUsage | AccountFailure]: ...


def _failure(service: str, error: grpc.aio.AioRpcError) -> AccountFailure:
    code = from_grpc(error.code())
    if code is StatusCode.UNIMPLEMENTED:
        raise SourceMissing(f"{service} is not on the bus: {error.details()}")
    return AccountFailure(f"{service}: {code.name}: {error.details()}", code in _RETRIABLE)


class CrmAccounts:
    """:class:`AccountSource` over ``powerbus.crm.v1.Customers.GetAccount``, with at most
    ``concurrency`` calls in flight, each with ``timeout`` seconds."""

    def __init__(
        self, stub: crm_pb2_grpc.CustomersAsyncStub, *, timeout: float, concurrency: int
    ) -> None:
        self._stub = stub
        self._timeout = timeout
        self._limit = asyncio.Semaphore(concurrency)

    async def accounts(self, account_ids: Sequence[str]) -> dict[str, AccountInfo | AccountFailure]:
        tasks = [asyncio.ensure_future(self._one(a)) for a in account_ids]
        try:
            results = await asyncio.gather(*tasks)
        except BaseException:
            # SourceMissing (or a cancel) ends the batch: no call is left running.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return dict(zip(account_ids, results, strict=True))

    async def _one(self, account_id: str) -> AccountInfo | AccountFailure:
        async with self._limit:
            try:
                reply = await self._stub.GetAccount(
                    crm_pb2.GetAccountRequest(account_id=account_id), timeout=self._timeout
                )
            except grpc.aio.AioRpcError as error:
                return _failure("crm GetAccount", error)
        try:
            return account_info(reply)
        except PowerbusError as error:
            return AccountFailure(f"crm account {account_id}: {error}", False)

    async def all_billable(self) -> list[str]:
        ids: list[str] = []
        token = ""
        for _ in range(_MAX_PAGES):
            request = crm_pb2.ListAccountsRequest(
                statuses=_BILLED_STATUSES,
                page=common_pb2.PageRequest(page_size=_LIST_PAGE, page_token=token),
            )
            try:
                reply = await self._stub.ListAccounts(request, timeout=self._timeout)
            except grpc.aio.AioRpcError as error:
                failure = _failure("crm ListAccounts", error)  # SourceMissing if absent
                if failure.retriable:
                    raise Unavailable(failure.reason) from None
                raise PowerbusError(failure.reason) from None
            ids += [a.account_id for a in reply.accounts]
            token = reply.page.next_page_token
            if not token:
                return ids
        raise PowerbusError(f"crm ListAccounts: more than {_MAX_PAGES} pages; not listed")


# Suspended accounts (cut for arrears) are billed as before; closed and pending ones not.
_BILLED_STATUSES = (crm_pb2.ACCOUNT_STATUS_ACTIVE, crm_pb2.ACCOUNT_STATUS_SUSPENDED)
_LIST_PAGE = 500  # CRM's largest page
_MAX_PAGES = 20_000  # 10 million accounts: a bound on the loop, not a real limit


def account_info(account: crm_pb2.Account) -> AccountInfo:
    """The billing view of a CRM ``Account``."""
    basis = enum_name(account.demand_basis, billing_pb2.DemandBasis)
    return AccountInfo(
        account_id=account.account_id,
        tariff_id=account.tariff_id,
        active=account.status in _BILLED_STATUSES,
        meter_ids=tuple(m.meter_id for m in account.meters),
        tier_allowance_kwh=kwh_from_wire(account.tier_allowance_kwh),
        demand_basis=None if basis is None else DemandBasis(basis),
        contract_demand_kw=kwh_from_wire(account.contract_demand_kw),
        capacity_kva=kwh_from_wire(account.contract_capacity_kva),
        power_factor_standard=decimal_from_proto(
            account.power_factor_standard, field="power_factor_standard"
        ),
    )


class MeteringUsage:
    """:class:`UsageSource` over ``powerbus.metering.v1.Metering.SummarizeUsage``, in
    chunks of ``chunk`` meters per call, each with ``timeout`` seconds."""

    def __init__(
        self, stub: metering_pb2_grpc.MeteringAsyncStub, *, timeout: float, chunk: int = 500
    ) -> None:
        self._stub = stub
        self._timeout = timeout
        self._chunk = chunk

    async def usage(
        self,
        meter_ids: Sequence[str],
        *,
        start: datetime,
        end: datetime,
        windows: Sequence[TouWindow],
        time_zone: str,
    ) -> dict[str, MeterUsage | AccountFailure]:
        period = common_pb2.Period()
        period.start.FromDatetime(start)
        period.end.FromDatetime(end)
        wire_windows = [
            metering_pb2.LocalTimeWindow(
                label=w.period.value,
                start_minute=w.start_minute,
                end_minute=w.end_minute,
                months=w.months,
            )
            for w in windows
        ]
        found: dict[str, MeterUsage | AccountFailure] = {}
        for i in range(0, len(meter_ids), self._chunk):
            chunk = meter_ids[i : i + self._chunk]
            request = metering_pb2.SummarizeUsageRequest(
                meters=[common_pb2.MeterRef(meter_id=m) for m in chunk],
                period=period,
                windows=wire_windows,
                time_zone=time_zone,
            )
            try:
                reply = await self._stub.SummarizeUsage(request, timeout=self._timeout)
            except grpc.aio.AioRpcError as error:
                failure = _failure("metering SummarizeUsage", error)
                found.update(dict.fromkeys(chunk, failure))
                continue
            for summary in reply.summaries:
                found[summary.meter.meter_id] = meter_usage(summary)
            for meter_id in chunk:
                found.setdefault(
                    meter_id, AccountFailure(f"metering: no summary of meter {meter_id}", True)
                )
        return found


def meter_usage(summary: metering_pb2.UsageSummary) -> MeterUsage:
    """The determinants of one ``UsageSummary``; window labels are TOU period names."""
    tou: dict[TouPeriod, Decimal] = {}
    for row in summary.window_usage:
        period = TouPeriod(row.label)
        tou[period] = tou.get(period, Decimal(0)) + kwh_from_wire(row.kwh)
    return MeterUsage(
        kwh=kwh_from_wire(summary.kwh),
        tou_kwh=tou,
        reactive_kvarh=kwh_from_wire(summary.reactive_kvarh),
        max_demand_kw=kwh_from_wire(summary.max_demand_kw),
        estimated=summary.values_estimated > 0,
        complete=summary.complete,
    )
