"""The dashboard in a real browser (Debian's Chromium driven by Playwright), against a real
bus with echo traffic flowing: its numbers agree with /metrics, every observed edge is
drawn, and a node killed with SIGKILL turns red and raises an alert within its lease TTL.

The screenshot goes to ``test-output/dashboard.png`` (or ``$POWERBUS_TEST_OUTPUT``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path

import grpc
import pytest
from playwright.async_api import Browser, Page, async_playwright

from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.monitoring.http_client import fetch_json, fetch_text

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
LEASE_TTL_S = 4.0
ECHO = "powerbus.echo.v1.Echo"
CALLERS = ("billing-1", "crm-1", "")
OUTPUT = Path(os.environ.get("POWERBUS_TEST_OUTPUT", Path(__file__).parents[2] / "test-output"))


class Traffic:
    """Echo calls through the bus from a thread, from a few callers, until stopped."""

    def __init__(self, bus: str) -> None:
        self._bus = bus
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0

    def start(self, *, seconds: float = 60.0) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(seconds,), name="echo-traffic")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        with grpc.insecure_channel(self._bus) as channel:
            stub = echo_pb2_grpc.EchoStub(channel)
            i = 0
            while not self._stop.is_set() and time.monotonic() < deadline:
                caller = CALLERS[i % len(CALLERS)]
                metadata = (("x-powerbus-caller", caller),) if caller else ()
                with contextlib.suppress(grpc.RpcError):
                    stub.Echo(echo_pb2.EchoRequest(message="hi"), timeout=2, metadata=metadata)
                self.sent += 1
                i += 1
                self._stop.wait(0.01)


@pytest.fixture
def traffic(bus_factory, node_factory) -> Iterator[tuple[object, dict[str, object], Traffic]]:
    bus = bus_factory(lease_ttl=f"{LEASE_TTL_S}s")
    nodes = {n: node_factory("echo", bus=bus, node_id=n) for n in ("echo-1", "echo-2")}
    flow = Traffic(bus.grpc)
    try:
        yield bus, nodes, flow
    finally:
        flow.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


def metrics_by_service(http: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in fetch_text(http, "/metrics", timeout=5).splitlines():
        match = re.match(r'^powerbus_requests_total\{.*service="([^"]+)".*\} (\S+)$', line)
        if match:
            counts[match[1]] = counts.get(match[1], 0) + int(float(match[2]))
    return counts


async def dashboard_counts(page: Page) -> dict[str, int]:
    rows = page.locator("#services-table tr[data-service]")
    counts = {}
    for i in range(await rows.count()):
        row = rows.nth(i)
        cell = row.locator('td[data-field="requests_total"]')
        counts[str(await row.get_attribute("data-service"))] = int(
            str(await cell.get_attribute("data-value"))
        )
    return counts


async def wait_for(check, *, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not seen within {timeout}s")
        await _pause()


async def _pause() -> None:
    await asyncio.sleep(0.05)


async def test_dashboard_agrees_with_metrics_draws_edges_and_shows_a_crash(traffic, browser):
    bus, nodes, flow = traffic
    page = await browser.new_page(viewport={"width": 1600, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(f"http://{bus.http}/")
    await page.wait_for_selector('#live[data-state="live"]', timeout=10_000)

    # Traffic flows, then stops: the dashboard's totals settle on what /metrics says.
    flow.start(seconds=30)
    await wait_for(
        lambda: _some_traffic(page), timeout=10, what="live request rates on the dashboard"
    )
    flow.stop()

    async def agree() -> dict[str, int] | None:
        shown = await dashboard_counts(page)
        return shown if shown and shown == metrics_by_service(bus.http) else None

    shown = await wait_for(agree, timeout=5, what="dashboard counts equal to /metrics")
    assert shown[ECHO] == flow.sent > 0

    # Every observed edge (caller → service → node) is drawn.
    topology = fetch_json(bus.http, "/api/topology", timeout=5)
    edges = topology["observed_edges"]
    assert {e["caller"] for e in edges} == {"billing-1", "crm-1", "peer:127.0.0.1"}
    assert {e["node"] for e in edges} == {"echo-1", "echo-2"}
    for e in edges:
        drawn = page.locator(
            f'#graph g.edge.observed[data-caller="{e["caller"]}"]'
            f'[data-service="{e["service"]}"][data-node="{e["node"]}"]'
        )
        assert await drawn.count() == 1, f"edge {e} is not drawn"

    # A node killed with SIGKILL turns red and raises an alert within its lease TTL, a
    # sweep and an evaluation: traffic may show it unreachable sooner, but that finding
    # keeps the rule's hold, and a lapsed lease raises at once.
    flow.start(seconds=30)
    await page.wait_for_timeout(1500)
    killed_at = time.time()
    nodes["echo-2"].kill()
    red = '#nodes-table tr[data-node="echo-2"]:is([data-health="down"],[data-health="unreachable"])'
    await page.wait_for_selector(red, timeout=10_000)
    await page.wait_for_selector('#alerts-panel li[data-subject="echo-2"]', timeout=10_000)
    pill = page.locator('#graph g.vertex.node[data-node="echo-2"]')
    assert await pill.get_attribute("data-health") in ("down", "unreachable")
    # Raised by the lapsed lease, at once (the traffic finding would have held 5 s more);
    # timed by the bus's own clock, not by how soon a loaded browser drew it.
    alerts = fetch_json(bus.http, "/api/alerts", timeout=5)["active"]
    (alert,) = [a for a in alerts if a["rule"] == "node-down" and a["subject"] == "echo-2"]
    assert "lease lapsed" in alert["message"], alert
    elapsed = datetime.fromisoformat(alert["raised_at"]).timestamp() - killed_at
    bound = LEASE_TTL_S + 2.5
    assert elapsed < bound, f"raised {elapsed:.1f}s after the kill, the lease TTL is {LEASE_TTL_S}s"

    # What a node's loss would do, for the one still up.
    await page.click('#graph g.vertex.node[data-node="echo-1"]')
    await page.wait_for_selector("#impact .headline", timeout=5_000)
    await page.wait_for_timeout(1200)  # a couple of live updates after the click
    await asyncio.to_thread(OUTPUT.mkdir, parents=True, exist_ok=True)
    await page.screenshot(path=str(OUTPUT / "dashboard.png"), full_page=True)
    flow.stop()

    # The service page's history charts and breakdown.
    await page.goto(f"http://{bus.http}/#/service/{ECHO}")
    await page.wait_for_selector("#chart-qps svg path.series", timeout=10_000)
    await page.wait_for_selector("#breakdown table", timeout=10_000)
    await page.screenshot(path=str(OUTPUT / "dashboard-service.png"), full_page=True)
    assert errors == []


async def _some_traffic(page: Page) -> bool:
    cell = page.locator(f'#services-table tr[data-service="{ECHO}"] td[data-field="qps"]')
    return await cell.count() == 1 and (await cell.inner_text()).strip() not in ("", "0")
