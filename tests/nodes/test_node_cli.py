"""``powerbus node KIND ...`` as a user runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from powerbus.nodes.sdk import NODE_KINDS

NODE = [sys.executable, "-m", "powerbus.bus", "node"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NODE, *args], capture_output=True, text=True, timeout=60)


def test_help_shows_every_option_and_an_example():
    result = run("--help")
    assert result.returncode == 0, result.stderr
    for text in ("--bus", "--listen", "--id", "--state-file", "--weight", "--zone",
                 "--priority", "--config", "Example", "powerbus node echo --bus"):  # fmt: skip
        assert text in result.stdout
    # The list of kinds is wrapped to the terminal's width, at spaces or after hyphens.
    unwrapped = re.sub(r"-\s+", "-", " ".join(result.stdout.split()))
    assert ", ".join(sorted(NODE_KINDS)) in unwrapped


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["echo", "--id", "e-1"], "error: bus: required"),
        (["echo", "--bus", "127.0.0.1:1"], "error: id: required"),
        (["echo", "--bus", "nowhere", "--id", "e-1"], "expected HOST:PORT"),
        (["metering-x", "--bus", "127.0.0.1:1", "--id", "e-1"], "unknown node kind"),
        (["echo", "--bus", "127.0.0.1:1", "--id", "e-1", "--lease-ttl", "soon"], "lease-ttl"),
    ],
)
def test_bad_settings_exit_2_naming_the_problem(args, message):
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_a_bad_priority_is_rejected_with_the_choices():
    result = run("echo", "--bus", "127.0.0.1:1", "--id", "e-1", "--priority", "backup")
    assert result.returncode == 2
    assert "primary" in result.stderr and "standby" in result.stderr


def test_settings_come_from_the_environment_too():
    result = subprocess.run(
        [*NODE, "echo", "--id", "e-1"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "POWERBUS_BUS": "nowhere"},
    )
    assert result.returncode == 2
    assert "POWERBUS_BUS" in result.stderr
