"""The HTTP API's queries, errors and the dashboard's files."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import pytest
from monitoring_support import get_json, get_text, quick

from powerbus.bus.kernel.errors import InvalidArgument
from powerbus.monitoring.api import auto_step, parse_since, parse_step


def test_since_and_step_are_read_as_people_write_them():
    assert parse_since("1h", now=10_000.0) == 6400.0
    assert parse_since("1700000000", now=0.0) == 1_700_000_000.0
    assert parse_since("2023-11-14T22:13:20+00:00", now=0.0) == 1_700_000_000.0
    assert (parse_step("10s"), parse_step("1m"), parse_step("15")) == (10, 60, 20)
    assert auto_step(3600) == 30 and auto_step(7 * 86400) == 3 * 3600


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("since=yesterday", "since: expected"),
        ("step=1s", "the finest rollup is 10s"),
        ("since=1h&until=2h", "until: must be after since"),
        ("by=colour", "by: one of"),
        ("since=30d&step=10s", "at most"),
    ],
)
async def test_a_bad_traffic_query_is_a_400_saying_why(bus_server, query, problem):
    bus = await bus_server(monitoring=quick())
    with pytest.raises(InvalidArgument, match=problem):
        await get_json(bus, f"/api/traffic?{query}")


async def test_the_dashboard_is_served_from_the_package(bus_server):
    bus = await bus_server(monitoring=quick())
    page = await get_text(bus, "/")
    assert "<title>powerbus" in page and "/static/app.js" in page
    script = await get_text(bus, "/static/app.js")
    css = await get_text(bus, "/static/app.css")
    assert "EventSource" in script and "http://" not in script.replace("http://www.w3.org", "")
    assert ".topbar" in css
    assert (await get_text(bus, "/healthz")) == "ok\n"
    assert (await get_json(bus, "/api/nodes")) == {"nodes": []}
    with pytest.raises(InvalidArgument):
        await get_json(bus, "/api/impact")


async def test_the_live_stream_sends_the_overview_every_second(bus_server):
    bus = await bus_server(monitoring=quick())

    def read_two_events() -> list[str]:
        url = f"http://{bus.http_address}/api/stream"
        events: list[str] = []
        with urllib.request.urlopen(url, timeout=5) as stream:
            assert stream.headers["Content-Type"].startswith("text/event-stream")
            for raw in stream:
                line = raw.decode()
                if line.startswith("data: "):
                    events.append(line)
                if len(events) == 2:
                    return events
        return events

    events = await asyncio.to_thread(read_two_events)
    assert len(events) == 2 and '"overview"' in events[0] and '"topology"' in events[1]


async def test_the_http_server_stops_with_a_stream_open(bus_server, tmp_path):
    bus = await bus_server(monitoring=quick())
    url = f"http://{bus.http_address}/api/stream"
    stream = await asyncio.to_thread(urllib.request.urlopen, url, timeout=5)
    try:
        await asyncio.wait_for(bus.stop(), 10)  # would hang if the stream held uvicorn open
    finally:
        stream.close()
    with pytest.raises(urllib.error.URLError):
        await asyncio.to_thread(urllib.request.urlopen, f"http://{bus.http_address}/", timeout=2)
