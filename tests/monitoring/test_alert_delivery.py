"""Alert delivery and handling (issue 14, "what else"): alerts go to webhooks in
Alertmanager's format; operators acknowledge and silence them from the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from powerbus.monitoring.http_client import fetch_json
from powerbus.nodes.testing.waiting import eventually_sync

RECEIVER = Path(__file__).with_name("webhook_receiver.py")
POWERBUS = [sys.executable, "-m", "powerbus.bus"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*POWERBUS, *args], capture_output=True, text=True, timeout=30)


def test_alerts_reach_a_webhook_and_can_be_acknowledged_and_silenced(
    bus_factory, node_factory, tmp_path
):
    received, port_file = tmp_path / "received.jsonl", tmp_path / "port"
    receiver = subprocess.Popen([sys.executable, str(RECEIVER), str(received), str(port_file)])
    try:
        port = eventually_sync(
            lambda: port_file.exists() and port_file.read_text(), timeout=15, what="the receiver"
        )
        config = tmp_path / "bus.toml"
        config.write_text(
            "[monitoring]\ndefault_alerts = false\n"
            f'alert_webhooks = "http://127.0.0.1:{port}/hook"\n\n'
            '[[alerts]]\nname = "node-down"\nkind = "node_down"\nseverity = "critical"\n',
            encoding="utf-8",
        )
        bus = bus_factory(config=config, lease_ttl="1s")
        loud = node_factory("echo", bus=bus, node_id="echo-2")
        quiet = node_factory("echo", bus=bus, node_id="echo-3")
        silence = run("alerts", "silence", "--subject", "echo-3", "--for", "10m",
                      "--comment", "upgrade", "--http", bus.http)  # fmt: skip
        assert silence.returncode == 0, silence.stderr
        loud.kill()
        quiet.kill()

        def notifications() -> list[dict]:
            if not received.exists():
                return []
            return [json.loads(line) for line in received.read_text().splitlines()]

        (first,) = eventually_sync(notifications, timeout=15, what="a notification")
        assert (first["version"], first["status"], first["receiver"]) == ("4", "firing", "powerbus")
        (alert,) = first["alerts"]
        assert alert["labels"] == {
            "alertname": "node-down",
            "severity": "critical",
            "kind": "node_down",
            "subject": "echo-2",
        }
        assert alert["endsAt"] == "0001-01-01T00:00:00Z" and alert["startsAt"].endswith("Z")
        assert first["externalURL"] == f"http://{bus.http}/"

        active = eventually_sync(
            lambda: (
                len(fetch_json(bus.http, "/api/alerts", timeout=5)["active"]) == 2
                and fetch_json(bus.http, "/api/alerts", timeout=5)["active"]
            ),
            timeout=15,
            what="both alerts",
        )
        assert {a["subject"]: a["silenced"] for a in active} == {"echo-2": False, "echo-3": True}
        assert [n["alerts"][0]["labels"]["subject"] for n in notifications()] == ["echo-2"]

        ack = run("alerts", "ack", "node-down", "echo-2", "--by", "ops-1", "--http", bus.http)
        assert ack.returncode == 0, ack.stderr
        listed = run("alerts", "list", "--http", bus.http, "--json")
        by = {a["subject"]: a["acknowledged_by"] for a in json.loads(listed.stdout)["active"]}
        assert by == {"echo-2": "ops-1", "echo-3": None}
        missing = run("alerts", "ack", "node-down", "echo-9", "--http", bus.http)
        assert missing.returncode == 1 and "no active alert" in missing.stderr
    finally:
        receiver.terminate()
        receiver.wait(10)
