"""Subscribers report their positions and the bus shows their lag (``/api/events``,
``/metrics``); nodes given only the bus's gRPC address find the event sockets
(``GetEndpoints``); publishers and subscribers are edges of the graph and appear in the
dashboard's events panel — real bus, actor processes and Chromium on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from typing import Any

import grpc
import pytest
from events_support import (
    assert_exactly_once_in_order,
    panel_text,
    until,
    wait_exit,
    wait_for_count,
)

from powerbus.bus.kernel.errors import InvalidArgument
from powerbus.nodes.sdk.events import Subscriber
from powerbus.nodes.sdk.events.replay_client import ReplayClient

N = 60


def get(bus: Any, path: str) -> str:
    with urllib.request.urlopen(f"http://{bus.http}{path}", timeout=10) as response:
        return str(response.read().decode())


def subscribers(bus: Any) -> dict[str, dict[str, Any]]:
    body = json.loads(get(bus, "/api/events"))
    return {s["subscriber"]: s for s in body.get("subscribers", [])}


def test_nodes_given_only_the_bus_address_take_part_and_their_lag_is_shown(
    bus_factory, publisher, subscriber
) -> None:
    bus = bus_factory()
    sub = subscriber(bus, ask_bus=True, prefix="billing.")
    wait_exit(publisher(bus, count=N, ask_bus=True))
    rows = wait_for_count(sub.db, N)
    assert_exactly_once_in_order([r for r in rows if r[0] == "billing-1"], {"billing-1": N})

    # The subscriber reports every 2 s; once it has reported N it is 0 behind billing-1.
    caught_up = until(
        lambda: any(
            s["source"] == "billing-1" and s["position"] == N and s["lag"] == 0
            for s in subscribers(bus).get("tickets", {}).get("sources", [])
        ),
        seconds=20,
    )
    assert caught_up, subscribers(bus)
    assert subscribers(bus)["tickets"]["prefixes"] == ["billing."]

    # A subscriber that stopped at 10 of the 60 is 50 behind, in the API and on /metrics.
    async def report_behind() -> None:
        async with Subscriber(
            bus=bus.grpc, positions={"billing-1": 10}, name="behind", prefixes=["billing."]
        ) as sub:
            await sub.report()

    asyncio.run(report_behind())
    behind = subscribers(bus)["behind"]
    assert behind["lag"] >= 50
    assert {"source": "billing-1", "position": 10, "latest": N, "lag": 50} in behind["sources"]
    line = 'powerbus_event_subscriber_lag{source="billing-1",subscriber="behind"} 50.0'
    assert until(lambda: line in get(bus, "/metrics"), seconds=20), get(bus, "/metrics")
    metrics = get(bus, "/metrics")
    assert 'powerbus_events_published_total{source="billing-1"} 60.0' in metrics

    # Publishers and subscribers are edges of the node graph, in the API and the CLI.
    edges = json.loads(get(bus, "/api/topology"))["event_edges"]
    publishers = {e["node"]: e for e in edges if e["role"] == "publishes"}
    readers = {e["node"]: e for e in edges if e["role"] == "subscribes"}
    assert publishers["billing-1"]["events"] == N
    assert publishers["billing-1"]["topics"] == ["billing.bill.issued"]
    assert readers["behind"]["lag"] >= 50 and readers["tickets"]["events"] >= N
    assert '"caller:billing-1" -> "events"' in get(bus, "/api/topology?format=dot")
    shown = subprocess.run(
        [sys.executable, "-m", "powerbus.bus", "topology", "--http", bus.http],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "billing-1 publishes billing.bill.issued" in shown.stdout
    assert "behind subscribes billing." in shown.stdout

    # The dashboard's events panel shows both, with the lag, in a real browser.
    text = panel_text(bus.http, '#events-panel:not([hidden]) td:has-text("behind")')
    assert "billing.bill.issued" in text and "tickets" in text, text
    assert "billing-1 50" in text, text

    # GetEndpoints names the sockets of the state file; a report without a name is refused.
    async def ask() -> tuple[str, str]:
        channel = grpc.aio.insecure_channel(bus.grpc)
        try:
            client = ReplayClient(channel, timeout=10)
            with pytest.raises(InvalidArgument, match="subscriber"):
                await client.report("", prefixes=[""], positions={"x": 1}, delivered=1)
            return await client.endpoints()
        finally:
            await channel.close()

    assert asyncio.run(ask()) == (bus.state["events_in"], bus.state["events_out"])
