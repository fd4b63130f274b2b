"""Nothing the bus or the CRM node shows holds a seeded customer's full name, phone or ID
number: a real ``powerbus bus`` (access log on, DEBUG logging) and a real ``powerbus node
crm --seed N``, calls through the bus that carry personal data in requests, replies,
error details and an event, then a scan of every log file, the events tail and replay
output, the bus's traffic tables, every ``/api`` page, ``/metrics`` and the dashboard, and
both audiences' customer views.

The event store itself keeps the event as published (subscribers need it whole), so its
table is not scanned; ``events replay --show-personal`` proves the data was there."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format

from powerbus.bus.events import tables as event_tables
from powerbus.bus.kernel.database import create_engine, write_transaction
from powerbus.bus.kernel.masking import mask_phone
from powerbus.bus.kernel.supervisor import BusHandle
from powerbus.crm.v1 import crm_pb2, crm_pb2_grpc
from powerbus.nodes.crm import AUDIENCE_KEY, Audience, seed
from powerbus.nodes.sdk import BusChannel
from powerbus.nodes.sdk.events import Outbox, Publisher, PublisherSettings, open_event_tables
from powerbus.nodes.testing import eventually
from powerbus.nodes.testing.plugin import BusFactory, NodeFactory

COUNT, SEED = 12, 11
POWERBUS = [sys.executable, "-m", "powerbus.bus"]
PAGES = (
    "/",
    "/metrics",
    "/api/overview",
    "/api/traffic",
    "/api/breakdown",
    "/api/topology",
    "/api/impact?node=crm-pii",
    "/api/alerts",
    "/api/nodes",
    "/api/services",
    "/api/balancers",
    "/api/events",
    "/api/audit",
)
# A request value nobody would log unless payloads were logged.
MARKER = "PAYLOAD-MARKER-7f3a9c"
# The store keeps events as published, for subscribers; everything else is scanned.
EVENT_STORE_TABLES = {event_tables.runs.name}


def needles(people: list[seed.SeedCustomer]) -> dict[str, str]:
    """Every unmasked piece of personal data, with what it is."""
    found: dict[str, str] = {}
    for p in people:
        cid = p.customer.customer_id
        found[p.customer.name] = f"name of {cid}"
        found[p.id_number] = f"ID number of {cid}"
        for phone in p.customer.phones:
            found[phone] = f"phone of {cid}"
    return found


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return str(reply.read().decode("utf-8"))


def events_cli(bus: BusHandle, *args: str) -> str:
    out = subprocess.run(
        [*POWERBUS, "events", *args, "--bus", bus.grpc, "--json", "--timeout", "10"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout


def subscribed(bus: BusHandle, prefix: str) -> bool:
    body = json.loads(fetch(f"http://{bus.http}/api/events"))
    return any(s["prefix"] == prefix for s in body.get("subscriptions", []))


def bus_tables(db: Path) -> str:
    """Every row of the bus's database but the event store's, as text."""
    rows: list[str] = []
    with sqlite3.connect(db) as conn:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert set(tables) >= EVENT_STORE_TABLES, tables  # the exclusion names a real table
        for table in sorted(set(tables) - EVENT_STORE_TABLES):
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                rows.append(" ".join(map(repr, row)))
    return "\n".join(rows)


async def publish_customer(bus: BusHandle, db: str, customer: crm_pb2.Customer) -> None:
    """One ``crm.customer.changed`` event carrying a whole customer, published and stored."""
    engine = create_engine(db)
    try:
        open_event_tables(engine)
        box = Outbox(engine, source="crm-pii-events")
        settings = PublisherSettings(resend_after=0.5, ack_interval=0.05, call_timeout=5.0)
        async with Publisher(
            source="crm-pii-events", outbox=box, bus=bus.grpc, settings=settings
        ) as pub:
            with write_transaction(engine) as conn:
                box.add(conn, customer, topic="crm.customer.changed")
            pub.notify()
            await pub.flush(timeout=30)
    finally:
        engine.dispose()


async def calls_through_the_bus(bus: BusHandle, people: list[seed.SeedCustomer]) -> list[str]:
    """Personal data in requests, replies and error details; returns what a client saw of
    the views and the errors."""
    seen: list[str] = []
    async with BusChannel(target=bus.grpc, caller="agent-console", default_timeout=10) as ch:
        customers = ch.stub(crm_pb2_grpc.CustomersStub)
        tickets = ch.stub(crm_pb2_grpc.ServiceTicketsStub)
        for p in people:
            cid, phone = p.customer.customer_id, p.customer.phones[0]
            by_phone = await customers.SearchCustomers(crm_pb2.SearchCustomersRequest(phone=phone))
            assert cid in [c.customer_id for c in by_phone.customers]
            by_name = await customers.SearchCustomers(
                crm_pb2.SearchCustomersRequest(name=p.customer.name)
            )
            assert cid in [c.customer_id for c in by_name.customers]
            await tickets.OpenTicket(
                crm_pb2.OpenTicketRequest(
                    request_id=f"call-{cid}",
                    type=crm_pb2.TICKET_TYPE_COMPLAINT,
                    customer_id=cid,
                    title=f"请回电 {phone}",
                    description=f"证件号 {p.id_number}",
                )
            )
            # The node's NOT_FOUND quotes the id it was given: the bus masks the phone in it.
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await customers.GetCustomer(crm_pb2.GetCustomerRequest(customer_id=phone))
            assert error.value.code() is grpc.StatusCode.NOT_FOUND
            assert mask_phone(phone) in (error.value.details() or "")
            seen.append(error.value.details() or "")
            for audience in Audience:
                view = await customers.GetCustomerView(
                    crm_pb2.GetCustomerViewRequest(customer_id=cid),
                    metadata=((AUDIENCE_KEY, audience.value),),
                )
                assert view.customer.customer_id == cid
                seen.append(json_format.MessageToJson(view, ensure_ascii=False))
        with pytest.raises(grpc.aio.AioRpcError):
            await customers.GetCustomer(crm_pb2.GetCustomerRequest(customer_id=MARKER))
    # Callers name themselves, and an app may name itself after its user's phone.
    async with BusChannel(target=bus.grpc, caller=app_caller(people), default_timeout=10) as ch:
        customers = ch.stub(crm_pb2_grpc.CustomersStub)
        for _ in range(3):
            await customers.GetCustomer(crm_pb2.GetCustomerRequest(customer_id="C00000002"))
    return seen


def app_caller(people: list[seed.SeedCustomer], *, masked: bool = False) -> str:
    phone = people[1].customer.phones[0]
    return f"wechat-{mask_phone(phone) if masked else phone}"


async def test_nothing_shown_holds_unmasked_personal_data(
    bus_factory: BusFactory, node_factory: NodeFactory, tmp_path: Path
) -> None:
    bus = bus_factory(access_log=True, log_level="DEBUG")
    meters = tmp_path / "meters.csv"
    meters.write_text(
        "meter_id,protocol,gateway,address,model,pulse_constant\n"
        "MTR-0001,modbus,127.0.0.1:15020,1,SDM630,0\n"
    )
    node = node_factory(
        "crm",
        bus=bus,
        node_id="crm-pii",
        db=f"sqlite:///{tmp_path / 'crm.db'}",
        seed=COUNT,
        seed_rng=SEED,
        section_timeout="300ms",
        meters=meters,
    )
    people = seed.generate(COUNT, seed=SEED, meters=seed.read_meters(meters))
    logs = tmp_path / "powerbus"
    tail_out = logs / "events-tail.out"
    with tail_out.open("w") as out:
        tail = await asyncio.create_subprocess_exec(
            *POWERBUS,
            "events",
            "tail",
            "--bus",
            bus.grpc,
            "--topic",
            "crm.",
            "--count",
            "1",
            "--seconds",
            "40",
            "--json",
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        await eventually(lambda: subscribed(bus, "crm."), timeout=30, what="tail subscribed")
        await publish_customer(bus, f"sqlite:///{tmp_path / 'events.db'}", people[0].customer)
        assert await asyncio.wait_for(tail.wait(), 45) == 0, tail_out.read_text()
    finally:
        if tail.returncode is None:
            tail.kill()
            await asyncio.wait_for(tail.wait(), 10)
    texts = await calls_through_the_bus(bus, people)
    replay = ("replay", "--source", "crm-pii-events", "--from", "1")
    replayed = await asyncio.to_thread(events_cli, bus, *replay)
    unmasked = await asyncio.to_thread(events_cli, bus, *replay, "--show-personal")
    pages = {page: await asyncio.to_thread(fetch, f"http://{bus.http}{page}") for page in PAGES}
    texts.extend(pages.values())
    node.stop()  # flushes and closes its log files
    bus.stop()
    texts.append(replayed)
    texts.append(bus_tables(logs / f"{bus.name}.db"))
    log_files = sorted(logs.glob("*.out")) + sorted(logs.glob("*.err"))
    log_text = "\n".join(f.read_text("utf-8") for f in log_files)
    haystack = "\n".join([*texts, log_text])

    # The scan is not vacuous: the event carried the data, the tail printed it masked,
    # the access log and the views are there.
    first = people[0].customer
    assert first.phones[0] in unmasked and first.name in unmasked
    tailed = json.loads(tail_out.read_text().splitlines()[-1])
    assert tailed["payload"]["customer_id"] == first.customer_id
    assert tailed["payload"]["phones"][0] == mask_phone(first.phones[0])
    assert '"/powerbus.crm.v1.Customers/SearchCustomers" OK' in log_text
    assert f"caller={app_caller(people, masked=True)}" in log_text
    assert f'caller="{app_caller(people, masked=True)}"' in pages["/metrics"]
    assert f"seeded {COUNT} customers" in log_text
    assert "powerbus.crm.v1.Customers" in haystack
    leaks = [f"{what}: {value}" for value, what in needles(people).items() if value in haystack]
    assert leaks == []
    # The bus logs no payload at all, personal or not: the marker went only to the node.
    bus_logs = "\n".join(f.read_text("utf-8") for f in log_files if f.stem == bus.name)
    assert "DEBUG" in bus_logs and MARKER not in bus_logs


def test_events_tail_help_names_show_personal() -> None:
    out = subprocess.run(
        [*POWERBUS, "events", "tail", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "--show-personal" in out
