"""Reconciliation (对账) of one bank's settlement date: the statement comes from the bank
node serving that bank (``BankGateway.FetchStatement``), the ledger entries from the
store, the comparison from ``powerbus.adapters.bank.reconcile``. Operators resolve the
differences of a stored report item by item (:meth:`Reconciler.resolve`, rules in
:mod:`.resolution`); every report read or rerun shows the resolutions stored.

Several bank nodes serve ``BankGateway``, one per bank, and the router would pick any of
them; so the bank node of a bank is found in the registry by the ``bank_code`` it
registers in its metadata and called directly (:class:`BankDirectory`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import grpc

from powerbus.adapters.bank import ResolutionAction, Window, reconcile, report_to_json
from powerbus.bus.kernel.errors import NotFound, PowerbusError, Unavailable
from powerbus.common.v1 import common_pb2
from powerbus.nodes.payment import convert
from powerbus.nodes.payment.billing import rpc_error
from powerbus.nodes.payment.resolution import known_of, parse_report_id, plan, report_id
from powerbus.nodes.payment.store.payments import PaymentStore
from powerbus.nodes.payment.store.report_store import ReportStore
from powerbus.payment.v1 import payment_pb2, payment_pb2_grpc
from powerbus.registry.v1 import registry_pb2

__all__ = ["BANK_CODE_KEY", "BankDirectory", "Reconciler"]

BANK_CODE_KEY = "bank_code"
"""Registry metadata key naming the bank a bank node serves."""

_SERVICE = "powerbus.payment.v1.BankGateway"
_PAGE = 5_000


class BankDirectory:
    """Bank code → a BankGateway stub on that bank's node (channels kept until close)."""

    def __init__(
        self,
        registry: Any,
        *,
        timeout: dt.timedelta,
        dial: Callable[[str], grpc.aio.Channel] = grpc.aio.insecure_channel,
    ) -> None:
        self._registry = registry
        self._dial = dial
        """Opens a channel to a bank node (the payment node's: its certificate)."""
        self._timeout = timeout.total_seconds()
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def gateway(self, bank_code: str) -> payment_pb2_grpc.BankGatewayAsyncStub:
        try:
            reply = await self._registry.ListNodes(
                registry_pb2.ListNodesRequest(service=_SERVICE), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(f"registry: {rpc_error(exc).message}") from None
        for node in reply.nodes:
            if (
                node.metadata.get(BANK_CODE_KEY) == bank_code
                and node.health == registry_pb2.NODE_HEALTH_UP
            ):
                channel = self._channels.get(node.address)
                if channel is None:
                    channel = self._channels[node.address] = self._dial(node.address)
                return payment_pb2_grpc.BankGatewayStub(channel)
        raise NotFound(f"no bank node serves bank {bank_code}")

    async def close(self) -> None:
        channels, self._channels = self._channels, {}
        await asyncio.gather(*(c.close() for c in channels.values()))


class Reconciler:
    """Fetch, compare, store, return."""

    def __init__(
        self,
        *,
        store: PaymentStore,
        reports: ReportStore,
        banks: BankDirectory,
        bank_timeout: dt.timedelta,
        before: dt.timedelta,
        after: dt.timedelta,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self._store = store
        self._reports = reports
        self._banks = banks
        self._timeout = bank_timeout.total_seconds()
        self._before = before
        self._after = after
        self._clock = clock

    async def run(
        self, bank_code: str, day: dt.date, *, differences_only: bool = False
    ) -> payment_pb2.ReconciliationReport:
        pages = await self._statement(bank_code, day)
        statement = convert.statement_from_proto(pages, bank_code=bank_code, day=day)
        window = Window(settlement_date=day, before=self._before, after=self._after)
        named = {line.original_txn_id or line.bank_txn_id for line in statement.lines}
        entries = await asyncio.to_thread(
            self._store.ledger_entries, bank_code, window.start, window.end, named
        )
        generated_at = self._clock().astimezone().replace(tzinfo=None)
        report = await asyncio.to_thread(
            reconcile, entries, statement, window, generated_at=generated_at
        )
        report = dataclasses.replace(report, report_id=report_id(bank_code, day))
        full = await self._annotated(convert.report_proto(report), bank_code, day)
        await asyncio.to_thread(
            self._reports.save,
            bank_code,
            day,
            generated_at=self._clock(),
            text=json.dumps(report_to_json(report), ensure_ascii=False),
            proto=full.SerializeToString(),
        )
        if differences_only:
            convert.differences_only(full)
        return full

    async def stored(
        self, bank_code: str, day: dt.date, *, differences_only: bool = False
    ) -> payment_pb2.ReconciliationReport:
        data = await asyncio.to_thread(self._reports.load, bank_code, day)
        report = await self._annotated(
            payment_pb2.ReconciliationReport.FromString(data), bank_code, day
        )
        if differences_only:
            convert.differences_only(report)
        return report

    async def resolve(
        self,
        report: str,
        item_number: int,
        action: ResolutionAction,
        *,
        operator: str,
        reason: str,
    ) -> payment_pb2.ReconciliationItem:
        """Resolve item ``item_number`` of the stored report ``report`` (its report_id)."""
        bank_code, day = parse_report_id(report)
        stored = await self.stored(bank_code, day)
        if not 1 <= item_number <= len(stored.items):
            raise NotFound(
                f"report {report} has no item {item_number} (items 1 to {len(stored.items)})"
            )
        found = stored.items[item_number - 1]
        item = dataclasses.replace(convert.item_from_proto(found), item_number=item_number)
        known = known_of(
            (convert.item_from_proto(i) for i in stored.items if i.bank_txn_id == item.bank_txn_id),
            item.bank_txn_id,
        )
        planned = plan(bank_code, day, item, action, operator=operator, reason=reason, known=known)
        done = await asyncio.to_thread(self._store.resolve, planned)
        found.resolution.CopyFrom(convert.resolution_proto(done))
        return found

    async def _annotated(
        self, proto: payment_pb2.ReconciliationReport, bank_code: str, day: dt.date
    ) -> payment_pb2.ReconciliationReport:
        resolved = await asyncio.to_thread(self._store.resolutions_of, bank_code, day)
        convert.annotate(proto, resolved, report_id=report_id(bank_code, day))
        return proto

    async def _statement(
        self, bank_code: str, day: dt.date
    ) -> list[payment_pb2.FetchStatementResponse]:
        gateway = await self._banks.gateway(bank_code)
        pages: list[payment_pb2.FetchStatementResponse] = []
        token = ""
        while True:
            request = payment_pb2.FetchStatementRequest(
                bank_code=bank_code,
                settlement_date=convert.date_proto(day),
                page=common_pb2.PageRequest(page_size=_PAGE, page_token=token),
            )
            try:
                page = await gateway.FetchStatement(request, timeout=self._timeout)
            except grpc.aio.AioRpcError as exc:
                raise _bank_error(exc) from None
            pages.append(page)
            token = page.page.next_page_token
            if not token:
                return pages


def _bank_error(exc: grpc.aio.AioRpcError) -> PowerbusError:
    return rpc_error(exc)
