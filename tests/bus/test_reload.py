"""SIGHUP re-reads the config file (issue 14, "what else"): alert rules and policy defaults
change without a restart; a file that no longer holds changes nothing and says why."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from powerbus.monitoring.http_client import fetch_json
from powerbus.nodes.testing.waiting import eventually_sync

ECHO = "powerbus.echo.v1.Echo"


def rules(bus) -> list[str]:
    return [r["name"] for r in fetch_json(bus.http, "/api/alerts", timeout=5)["rules"]]


def picker(bus) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "powerbus.bus", "policy", "show", ECHO, "--bus", bus.grpc, "--json"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)["settings"]["picker"])


CONFIG = """
[monitoring]
default_alerts = false

[[alerts]]
name = "{rule}"
kind = "node_down"

[policy]
picker = "{picker}"
"""


def test_sighup_reloads_alert_rules_and_policy_defaults(bus_factory, tmp_path):
    config = tmp_path / "bus.toml"
    config.write_text(CONFIG.format(rule="first", picker="random"), encoding="utf-8")
    bus = bus_factory(config=config)
    assert rules(bus) == ["first"] and picker(bus) == "random"

    config.write_text(CONFIG.format(rule="second", picker="least_request"), encoding="utf-8")
    os.kill(bus.pid, signal.SIGHUP)
    eventually_sync(lambda: rules(bus) == ["second"], timeout=10, what="the new rules")
    assert picker(bus) == "least_request"

    config.write_text(CONFIG.format(rule="third", picker="no_such_picker"), encoding="utf-8")
    os.kill(bus.pid, signal.SIGHUP)
    log = bus.stderr_path
    eventually_sync(
        lambda: "configuration not reloaded" in log.read_text(encoding="utf-8"),
        timeout=10,
        what="the error",
    )
    assert rules(bus) == ["second"] and picker(bus) == "least_request"
