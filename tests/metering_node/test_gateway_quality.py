"""Meter data quality per gateway: the metering node's ``metering.gateway.quality_reported``
events, read back from the bus's event store, summed per gateway, served at
``/api/metering/quality``, shown on the dashboard's panel and alerted on by the
``gateway_quality`` rule.

The end-to-end test runs a real farm with faults injected on one line (``--faults`` at
start, one more through the control endpoint), a real bus, a metering node polling every
second and Chromium: the faulty gateway's received share drops and raises the alert, the
healthy one stays green. The rest checks the pieces (the store's topic read, the feed's
overlap and paging, the book, the rule) without processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from metering_node_support import Farm, farm_ready, launch_farm, launch_metering, wait_for
from playwright.async_api import async_playwright

from powerbus.adapters.meters import DeviceRejected, FrameError, FrameProblem, MeterTimeout
from powerbus.bus.events.batch import StoredRow
from powerbus.bus.events.quality_feed import QUALITY_TOPIC, GatewayQualityFeed
from powerbus.bus.events.store import EventStore
from powerbus.bus.kernel.errors import ConfigError
from powerbus.bus.kernel.supervisor import BusHandle, ProcessGroup
from powerbus.events.v1 import events_pb2
from powerbus.monitoring.findings import findings
from powerbus.monitoring.gateway_quality import GatewayQualityBook, PollReport
from powerbus.monitoring.health import HealthLog
from powerbus.monitoring.http_client import fetch_json
from powerbus.monitoring.rules import DEFAULT_RULES, AlertKind, parse_rules
from powerbus.monitoring.topology import Topology
from powerbus.nodes.metering.quality import ReadFailure, ReadFailures, quality_report
from powerbus.nodes.sdk.events import envelope

WINDOW_S = 8
THRESHOLD = 0.9

# -- the pieces ---------------------------------------------------------------------------


def test_read_failures_are_counted_by_kind_and_reported_on_the_wire() -> None:
    failures = ReadFailures()
    for error in (
        MeterTimeout(meter="M1", gateway="g:1", problem="no reply"),
        MeterTimeout(meter="M1", gateway="g:1", problem="no reply"),
        DeviceRejected(meter="M2", gateway="g:1", code=4, problem="slave failure"),
        FrameError(meter="M3", gateway="g:1", reason=FrameProblem.CHECKSUM, problem="sum"),
        FrameError(meter="M3", gateway="g:1", reason=FrameProblem.MISMATCH, problem="other"),
    ):
        failures.add(error)
    end = datetime(2026, 12, 4, 12, 15, tzinfo=timezone.utc)
    report = quality_report(
        gateway="g:1",
        end=end,
        interval=timedelta(minutes=15),
        expected=3,
        received=1,
        stored=3,
        estimated=2,
        failures=failures,
        last_good=[None, end - timedelta(minutes=20), end - timedelta(seconds=3)],
    )
    kinds = {events_pb2.ReadFailureKind.Name(f.kind): f.count for f in report.failures}
    assert kinds == {
        "READ_FAILURE_KIND_TIMEOUT": 2,
        "READ_FAILURE_KIND_EXCEPTION": 1,
        "READ_FAILURE_KIND_CHECKSUM": 1,
        "READ_FAILURE_KIND_TRUNCATED": 1,
    }
    assert report.last_good_read.ToDatetime(tzinfo=timezone.utc) == end - timedelta(seconds=3)
    assert report.interval.seconds == 900
    # every kind has its wire value
    assert {k.proto for k in ReadFailure} == set(events_pb2.ReadFailureKind.values()) - {0}
    never = quality_report(
        gateway="g:1", end=end, interval=timedelta(seconds=1), expected=1, received=0,
        stored=0, estimated=0, failures=ReadFailures(), last_good=[None],
    )  # fmt: skip
    assert not never.HasField("last_good_read")


def _row(source: str, sequence: int, gateway: str, received: int) -> StoredRow:
    payload = events_pb2.GatewayQualityReported(
        gateway=gateway,
        meters_expected=4,
        meters_received=received,
    )
    if received < 4:
        payload.failures.add(kind=events_pb2.READ_FAILURE_KIND_GARBAGE, count=4 - received)
    env = envelope(source, sequence, payload)
    return StoredRow(source, sequence, QUALITY_TOPIC, 0, env.SerializeToString())


def test_the_feed_reads_each_report_once_across_overlaps_and_pages() -> None:
    now = [1_000.0]
    store = EventStore.open("sqlite://", clock=lambda: now[0])
    try:
        # another topic in the same batch is not read
        other = envelope("m-1", 1, events_pb2.ReadingsReceived(message_id="x"))
        store.write(
            [StoredRow("m-1", 1, "metering.readings.received", 0, other.SerializeToString())]
        )
        store.write([_row("m-1", 2, "gw:1", 4), _row("m-1", 3, "gw:2", 1)])
        feed = GatewayQualityFeed(lambda: store, since_s=60, overlap_ms=5_000, clock=lambda: now[0])
        first = feed()
        assert [(r.gateway, r.received, r.failures) for r in first] == [
            ("gw:1", 4, {}),
            ("gw:2", 1, {"garbage": 3}),
        ]
        assert (first[0].key, first[0].node, first[0].seen_at) == (("m-1", 2), "m-1", 1_000.0)
        # a row stamped earlier than what was read (another bus's batch committed late)
        # is still found, and nothing is read twice
        now[0] = 999.0
        store.write([_row("m-2", 1, "gw:3", 2)])
        assert [r.gateway for r in feed()] == ["gw:3"]
        assert feed() == []
        # a batch larger than a page: every row, once, in order
        now[0] = 1_001.0
        store.write([_row("m-3", i, "gw:4", 4) for i in range(1, 4_502)])
        assert len(feed()) == 4_501
        assert feed() == []
    finally:
        store.close()
    assert GatewayQualityFeed(lambda: None, since_s=1)() == []


def _report(seq: int, gateway: str, *, at: float, expected: int, received: int) -> PollReport:
    return PollReport(
        key=("metering-1", seq), seen_at=at, node="metering-1", gateway=gateway,
        interval_end=at, expected=expected, received=received, stored=expected,
        estimated=expected - received, failures={"timeout": expected - received} if
        expected > received else {}, last_good=at if received else None,
    )  # fmt: skip


def test_the_book_sums_a_window_and_the_rule_finds_gateways_under_the_threshold() -> None:
    (default,) = [r for r in DEFAULT_RULES if r.kind is AlertKind.GATEWAY_QUALITY]
    assert (default.name, default.threshold, default.window) == (
        "gateway-data-quality",
        0.95,
        timedelta(hours=1),
    )
    (rule,) = parse_rules(
        [{"name": "q", "kind": "gateway_quality", "threshold": 0.9, "window": "1m",
          "min_requests": 8}]
    )  # fmt: skip
    with pytest.raises(ConfigError, match="received share is between 0 and 1"):
        parse_rules([{"name": "q", "kind": "gateway_quality", "threshold": 90}])
    with pytest.raises(ConfigError, match="needs a threshold"):
        parse_rules([{"name": "q", "kind": "gateway_quality"}])
    book = GatewayQualityBook(keep_s=120)
    book.add(
        [
            _report(1, "gw:bad", at=10, expected=4, received=0),  # out of the window
            _report(2, "gw:bad", at=100, expected=4, received=3),
            _report(3, "gw:bad", at=101, expected=4, received=3),
            _report(3, "gw:bad", at=101, expected=4, received=3),  # the same event again
            _report(4, "gw:ok", at=100, expected=4, received=4),
            _report(5, "gw:ok", at=101, expected=4, received=4),
            _report(6, "gw:few", at=101, expected=4, received=0),  # under min_requests
        ]
    )
    by_gateway = {q.gateway: q for q in book.summary(window_s=60, now=110)}
    bad = by_gateway["gw:bad"]
    assert (bad.polls, bad.expected, bad.received, bad.failures) == (2, 8, 6, {"timeout": 2})
    assert (bad.received_share, bad.estimated_share, bad.last_good) == (0.75, 0.25, 101)
    graph = Topology(nodes=[], services=[], declared=[], observed=[])
    found = list(
        findings(
            [rule],
            topology=graph,
            rates=lambda _s: {},
            health=HealthLog(),
            quality=lambda s: book.summary(window_s=s, now=110),
        )
    )
    assert [(f.subject, f.value) for f in found] == [("gw:bad", 0.75)]
    assert "6 of 8 readings received (75.0%)" in found[0].message
    assert "2 timeout" in found[0].message
    book.prune(now=225)
    assert [q.gateway for q in book.summary(window_s=1_000, now=225)] == []


def get_json(http: str, path: str) -> Any:
    return fetch_json(http, path, timeout=10)


# -- end to end ---------------------------------------------------------------------------


@dataclass
class Running:
    group: ProcessGroup
    bus: BusHandle
    farm: Farm
    faulty: str
    healthy: str


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    directory = tmp_path_factory.mktemp("gateway-quality")
    group = ProcessGroup(directory=directory)
    config = directory / "bus.toml"
    config.write_text(
        "[[alerts]]\n"
        'name = "gateway-data-quality"\n'
        'kind = "gateway_quality"\n'
        f"threshold = {THRESHOLD}\n"
        f'window = "{WINDOW_S}s"\n'
        "min_requests = 8\n"
    )
    try:
        # Meters are dealt to the lines in turn: M00002, M00004, M00006 and M00008 are
        # behind the second gateway (DL/T 645). One answers garbage from the start.
        launched = launch_farm(group, meters=8, gateways=2, faults="M00004=garbage")
        bus = group.start_bus(config=config)
        farm = farm_ready(launched)
        lines = {row["meter_id"]: row["gateway"] for row in farm.rows()}
        faulty, healthy = lines["M00004"], lines["M00001"]
        assert faulty != healthy and lines["M00002"] == faulty
        node = launch_metering(group, bus, farm, db=f"sqlite:///{directory / 'metering.db'}")
        node.wait_ready()
        yield Running(group, bus, farm, faulty, healthy)
    finally:
        group.close()


def _quality(bus: BusHandle) -> dict[str, dict[str, Any]]:
    body = get_json(bus.http, "/api/metering/quality")
    return {g["gateway"]: g for g in body["gateways"]}


def _alerts(bus: BusHandle) -> list[dict[str, Any]]:
    return [
        a
        for a in get_json(bus.http, "/api/alerts")["active"]
        if a["rule"] == "gateway-data-quality"
    ]


def test_a_faulty_line_drops_its_quality_and_raises_the_alert_a_healthy_one_stays_green(
    running: Running, tmp_path: Path
) -> None:
    bus, faulty, healthy = running.bus, running.faulty, running.healthy
    # M00002 answers a few polls first, so its silence is estimated from its last value.
    wait_for(
        lambda: _quality(bus).get(faulty, {}).get("polls", 0) >= 3,
        what="three polls of the faulty line reported",
    )
    running.farm.control(op="fault", meter="M00002", fault="no-answer")

    def degraded() -> dict[str, Any] | None:
        line = _quality(bus).get(faulty)
        if line is None or not {"timeout", "garbage"} <= set(line["failures"]):
            return None
        return line if line["estimated"] > 0 and line["alert"] else None

    line = wait_for(degraded, timeout=40, what="the faulty line's quality alert")
    assert line["status"] == "low" and line["received_share"] < THRESHOLD
    assert line["expected"] >= 8 and line["received"] < line["expected"]
    assert line["node"] == "metering-1" and line["last_good_read"]
    good = _quality(bus)[healthy]
    assert good["status"] == "ok" and good["received_share"] == 1.0 and good["alert"] is None
    assert good["failures"] == {} and good["estimated"] == 0
    raised = _alerts(bus)
    assert [a["subject"] for a in raised] == [faulty], raised
    assert "readings received" in raised[0]["message"] and "garbage" in raised[0]["message"]

    # The panel shows both lines, the faulty one low with its alert, the healthy one ok.
    rows = asyncio.run(_panel_rows(bus.http, tmp_path / "quality-panel.png"))
    assert rows[healthy]["status"] == "ok", rows
    assert rows[faulty]["status"] == "low", rows
    assert "quality alert" in rows[faulty]["text"] and "garbage" in rows[faulty]["text"]


async def _panel_rows(http: str, shot: Path) -> dict[str, dict[str, str]]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"]
        )
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            await page.goto(f"http://{http}/")
            await page.wait_for_selector("#quality-panel tr[data-status=low]", timeout=20_000)
            await page.wait_for_selector("#quality-panel tr[data-status=ok]", timeout=20_000)
            rows: dict[str, dict[str, str]] = {}
            for row in await page.query_selector_all("#quality-panel tbody tr"):
                gateway = str(await row.get_attribute("data-gateway"))
                rows[gateway] = {
                    "status": str(await row.get_attribute("data-status")),
                    "text": await row.inner_text(),
                }
            await page.locator("#quality-panel").screenshot(path=str(shot))
            return rows
        finally:
            await browser.close()
