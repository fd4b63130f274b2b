"""The panoramic view through a real bus: the CRM node and small billing, payment and
metering nodes (tests/crm/crm_fakes.py) all registered on a ``powerbus bus`` process.
Every source up, then one stopped, then one too slow: the view degrades by section."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import grpc
import pytest
from crm_fakes import FakeBilling, FakeMetering, FakePayments, Ledger, money, period

from powerbus.billing.v1 import billing_pb2
from powerbus.bus.kernel.addresses import parse_host_port
from powerbus.bus.kernel.supervisor import BusHandle
from powerbus.common.v1 import common_pb2
from powerbus.crm.v1 import crm_pb2, crm_pb2_grpc
from powerbus.metering.v1 import metering_pb2
from powerbus.nodes.crm import AUDIENCE_KEY, Audience, CrmNode, CrmSettings, seed
from powerbus.nodes.crm.segments import Trait
from powerbus.nodes.sdk import BusChannel, Node, NodeConfig, NodeRunner
from powerbus.payment.v1 import payment_pb2

SEED = 11
SECTION_TIMEOUT = timedelta(seconds=1)


@dataclass
class Stack:
    crm: CrmNode
    runners: dict[str, NodeRunner]
    ledger: Ledger
    channel: BusChannel
    customer: seed.SeedCustomer

    @property
    def customers(self) -> crm_pb2_grpc.CustomersAsyncStub:
        return self.channel.stub(crm_pb2_grpc.CustomersStub)

    async def view(self, audience: Audience) -> crm_pb2.CustomerView:
        request = crm_pb2.GetCustomerViewRequest(customer_id=self.customer.customer.customer_id)
        return await self.customers.GetCustomerView(
            request, metadata=((AUDIENCE_KEY, audience.value),), timeout=10
        )


def fill(ledger: Ledger, account_id: str, meter_id: str) -> None:
    jan = datetime(2026, 10, 1, tzinfo=timezone.utc)
    ledger.bills[account_id] = [
        billing_pb2.Bill(
            bill_id=f"B-{month}",
            account=common_pb2.AccountRef(account_id=account_id),
            period=period(jan.replace(month=month), jan.replace(month=month + 1)),
            total=money(12_345),
            amount_due=money(12_345 if month == 11 else 0),
        )
        for month in (10, 11)
    ]
    ledger.arrears[account_id] = billing_pb2.Arrears(
        account=common_pb2.AccountRef(account_id=account_id),
        principal=money(12_345),
        late_fee=money(37),
        total_due=money(12_382),
        credit_balance=money(0),
    )
    ledger.payments[account_id] = [
        payment_pb2.Payment(
            payment_id="P-1",
            bank_code="0102",
            bank_txn_id="T-1",
            account=common_pb2.AccountRef(account_id=account_id),
            amount=money(12_345),
            status=payment_pb2.PAYMENT_STATUS_POSTED,
        )
    ]
    ledger.monthly_kwh[meter_id] = 250.0
    ledger.events[meter_id] = [
        metering_pb2.EndDeviceEvent(
            mrid="ev-1",
            severity=metering_pb2.EVENT_SEVERITY_MAJOR,
            event_type=metering_pb2.EndDeviceEventType(name="power_off"),
            meter=common_pb2.MeterRef(meter_id=meter_id),
        )
    ]


async def run(node: Node, node_id: str, bus: BusHandle) -> NodeRunner:
    # No deregistration pause and a short drain: nothing else watches these nodes leave.
    config = NodeConfig(
        id=node_id,
        bus=parse_host_port(bus.grpc),
        deregister_delay=timedelta(0),
        drain_grace=timedelta(milliseconds=200),
    )
    runner = NodeRunner(node, config=config)
    await runner.start()
    await asyncio.wait_for(runner.wait_registered(), timeout=15)
    return runner


@pytest.fixture
async def stack(bus: BusHandle, tmp_path: Path) -> AsyncIterator[Stack]:
    people = seed.generate(5, seed=SEED)
    chosen = people[1]
    ledger = Ledger()
    fill(ledger, chosen.account.account_id, chosen.account.meters[0].meter_id)
    settings = CrmSettings(
        db=f"sqlite:///{tmp_path / 'crm.db'}",
        seed=5,
        seed_rng=SEED,
        section_timeout=SECTION_TIMEOUT,
    )
    crm = CrmNode(settings=settings)
    runners: dict[str, NodeRunner] = {}
    try:
        runners["crm"] = await run(crm, "crm-1", bus)
        runners["billing"] = await run(FakeBilling(ledger), "billing-1", bus)
        runners["payments"] = await run(FakePayments(ledger), "payment-1", bus)
        runners["metering"] = await run(FakeMetering(ledger), "metering-1", bus)
        async with BusChannel(target=bus.grpc, caller="agent-console", default_timeout=10) as ch:
            stack = Stack(crm, runners, ledger, ch, chosen)
            await until_complete(stack)
            yield stack
    finally:
        await asyncio.gather(*(runner.stop() for runner in runners.values()))


async def until_complete(stack: Stack) -> crm_pb2.CustomerView:
    """The bus learns of new nodes within a registry poll: wait (bounded) for every section."""
    deadline = time.monotonic() + 15
    while True:
        view = await stack.view(Audience.AGENT)
        if not view.unavailable_sections or time.monotonic() > deadline:
            return view
        await asyncio.sleep(0.2)


async def test_agent_view_with_every_source_up(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    ticket = await stack.channel.stub(crm_pb2_grpc.ServiceTicketsStub).OpenTicket(
        crm_pb2.OpenTicketRequest(
            request_id="95598-777",
            type=crm_pb2.TICKET_TYPE_COMPLAINT,
            customer_id=stack.customer.customer.customer_id,
            title="电费异常",
        ),
        timeout=10,
    )
    view = await stack.view(Audience.AGENT)
    assert list(view.unavailable_sections) == []
    assert [b.bill_id for b in view.recent_bills] == ["B-11", "B-10"]  # newest first
    assert [p.payment_id for p in view.recent_payments] == ["P-1"]
    assert [t.ticket_id for t in view.open_tickets] == [ticket.ticket_id]
    assert [a.total_due.fen for a in view.arrears] == [12_382] and view.total_due.fen == 12_382
    (reading,) = view.readings
    assert len(reading.monthly_usage) == 12 and reading.monthly_usage[-1].kwh == 250.0
    assert reading.connect_state == metering_pb2.CONNECT_STATE_CONNECTED
    assert reading.last_register_kwh == 12345.6 and [e.mrid for e in reading.recent_events] == [
        "ev-1"
    ]
    assert view.accounts[0].balance.fen == -12_382
    name = stack.customer.customer.name
    assert (
        view.customer.name == name[0] + "*" * (len(name) - 2) + name[-1]
        if len(name) > 2
        else name[0] + "*"
    )
    assert (
        view.customer.phones[0]
        == stack.customer.customer.phones[0][:3] + "****" + stack.customer.customer.phones[0][-4:]
    )
    # The audience and the segment travel on the wire (agent views only).
    assert view.audience == crm_pb2.VIEW_AUDIENCE_AGENT
    assert crm_pb2.USAGE_TRAIT_PEAK_HEAVY in view.segment.traits
    assert view.segment.usage_class != crm_pb2.USAGE_CLASS_UNSPECIFIED
    # The masked ID number stays off the wire; the builder has it.
    domain = await stack.crm.customer_view(
        crm_pb2.GetCustomerViewRequest(customer_id=stack.customer.customer.customer_id),
        Audience.AGENT,
    )
    assert domain.profile is not None and Trait.PEAK_HEAVY in domain.profile.traits  # 70 % peak
    assert domain.id_number == "*" * 14 + stack.customer.id_number[-4:]


async def test_customer_view_refusals_and_a_power_off_ticket(stack: Stack) -> None:
    """Read-only checks and one that adds a ticket share a set-up (four node start-ups):
    the customer's sections, the refusals, then a power-off showing in the agent's view."""
    view = await stack.view(Audience.CUSTOMER)
    assert list(view.unavailable_sections) == []
    assert view.audience == crm_pb2.VIEW_AUDIENCE_CUSTOMER and not view.HasField("segment")
    assert len(view.recent_bills) == 2 and len(view.readings) == 1
    assert list(view.recent_payments) == [] and list(view.open_tickets) == []
    assert list(view.arrears) == []
    assert view.accounts[0].balance.fen == -12_382  # the balance is theirs to see
    assert view.customer.address.endswith("****")
    domain = await stack.crm.customer_view(
        crm_pb2.GetCustomerViewRequest(customer_id=stack.customer.customer.customer_id),
        Audience.CUSTOMER,
    )
    assert "pay_arrears" in [o.code for o in domain.offers] and domain.profile is None

    # An unknown customer and an unknown audience are refused, naming what was wrong.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.customers.GetCustomerView(
            crm_pb2.GetCustomerViewRequest(customer_id="C404"), timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND and "C404" in (
        caught.value.details() or ""
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.customers.GetCustomerView(
            crm_pb2.GetCustomerViewRequest(customer_id=stack.customer.customer.customer_id),
            metadata=((AUDIENCE_KEY, "boss"),),
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert AUDIENCE_KEY in (caught.value.details() or "")

    # A power-off event opens a fault ticket once; the agent sees it.
    account = stack.customer.account
    event = metering_pb2.EndDeviceEvent(
        mrid="ev-42",
        event_type=metering_pb2.EndDeviceEventType(name="power_off"),
        meter=common_pb2.MeterRef(meter_id=account.meters[0].meter_id),
    )
    ticket = await stack.crm.on_end_device_event(event)
    assert ticket is not None and ticket.account_id == account.account_id
    again = await stack.crm.on_end_device_event(event)
    assert again is not None and again.ticket_id == ticket.ticket_id
    view = await stack.view(Audience.AGENT)
    assert [t.ticket_id for t in view.open_tickets] == [ticket.ticket_id]
    assert view.open_tickets[0].type == crm_pb2.TICKET_TYPE_FAULT_REPAIR


async def test_a_stopped_source_empties_only_its_section(stack: Stack) -> None:
    await stack.runners.pop("payments").stop()
    view = await stack.view(Audience.AGENT)
    assert list(view.unavailable_sections) == ["payments"]
    assert list(view.recent_payments) == []
    assert len(view.recent_bills) == 2 and len(view.readings) == 1 and len(view.arrears) == 1


async def test_a_slow_source_misses_its_deadline_and_the_view_still_returns(stack: Stack) -> None:
    stack.ledger.delay = 3.0  # every fake now takes longer than the 1 s section deadline
    started = time.monotonic()
    view = await stack.view(Audience.AGENT)
    took = time.monotonic() - started
    assert set(view.unavailable_sections) == {"bills", "arrears", "payments", "readings"}
    assert took < 2.5, f"the view waited {took:.1f}s for sources past their deadline"
    domain = await stack.crm.customer_view(
        crm_pb2.GetCustomerViewRequest(customer_id=stack.customer.customer.customer_id),
        Audience.AGENT,
    )
    assert (
        "DEADLINE_EXCEEDED" in domain.unavailable["bills"]
        or "no answer" in domain.unavailable["bills"]
    )
