"""``powerbus events tail|replay`` against a real bus, and the registry announcing node
status changes through the bus's own publisher."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from events_support import wait_exit, wait_subscribed

POWERBUS = [sys.executable, "-m", "powerbus.bus"]


def replay_json(bus: str, source: str, first: int, last: int = 0) -> list[dict]:
    out = subprocess.run(
        [
            *POWERBUS,
            "events",
            "replay",
            "--bus",
            bus,
            "--source",
            source,
            "--from",
            str(first),
            "--to",
            str(last),
            "--json",
            "--timeout",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_replay_and_tail_print_what_was_published(bus_factory, publisher) -> None:
    bus = bus_factory()
    tail = subprocess.Popen(
        [
            *POWERBUS,
            "events",
            "tail",
            "--bus",
            bus.grpc,
            "--topic",
            "billing.",
            "--count",
            "5",
            "--seconds",
            "30",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_subscribed(bus.http, "billing.")  # before anything is sent (slow joiner)
        wait_exit(publisher(bus, count=20))
        out, err = tail.communicate(timeout=40)
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.wait(10)
    assert tail.returncode == 0, err
    tailed = [json.loads(line) for line in out.splitlines()]
    sequences = [int(e["sequence"]) for e in tailed]
    assert len(sequences) == 5 and sequences == list(range(sequences[0], sequences[0] + 5))
    assert tailed[0]["payload"]["@type"].endswith("powerbus.events.v1.BillIssued")

    replayed = replay_json(bus.grpc, "billing-1", 16, 20)
    assert [int(e["sequence"]) for e in replayed] == [16, 17, 18, 19, 20]
    assert replayed[0]["payload"]["bill_id"] == "B16"

    gone = subprocess.run(
        [*POWERBUS, "events", "replay", "--bus", bus.grpc, "--source", "nobody", "--from", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert gone.returncode == 1 and "never stored" in gone.stderr, gone.stderr


def test_the_registry_and_monitoring_publish_through_the_bus(bus_factory, node_factory) -> None:
    bus = bus_factory()
    node = node_factory("echo", bus=bus, node_id="echo-7")
    node.stop()
    source = f"bus@{bus.grpc}"
    deadline = time.monotonic() + 20
    reasons: list[str] = []
    alerts: list[dict] = []
    while time.monotonic() < deadline:
        events = replay_json(bus.grpc, source, 1)
        status = [e for e in events if e["topic"] == "registry.node.status_changed"]
        reasons = [e["payload"]["reason"] for e in status if e["payload"]["node_id"] == "echo-7"]
        alerts = [e for e in events if e["topic"] == "monitoring.alert.raised"]
        if "down" in reasons and alerts:
            break
        time.sleep(0.3)
    assert reasons[0] == "registered" and reasons[-1] == "down", reasons
    rules = {a["payload"]["rule"] for a in alerts}
    assert rules & {"node-down", "service-without-healthy-node"}, alerts
    assert alerts[0]["payload"]["severity"] == "ALERT_SEVERITY_CRITICAL"
