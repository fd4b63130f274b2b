"""``powerbus config check`` (issue 14, "what else"): the file read as the bus reads it,
one line saying it holds or what is wrong, naming the file and the key."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

POWERBUS = [sys.executable, "-m", "powerbus.bus", "config", "check"]


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*POWERBUS, *args], capture_output=True, text=True, timeout=30)


def test_a_good_file_holds(tmp_path):
    config = tmp_path / "bus.toml"
    config.write_text(
        '[bus]\ngrpc = "127.0.0.1:6000"\n\n[[alerts]]\nname = "cis down"\nkind = "node_down"\n'
        'node = "cis-1"\nfor = "10s"\n\n[policy]\n"retry.max_attempts" = 2\n',
        encoding="utf-8",
    )
    result = check(str(config))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{config}: ok — bus gRPC 127.0.0.1:6000")
    summary = json.loads(check(str(config), "--json").stdout)
    assert "cis down" in summary["alert_rules"] and summary["policy"]["common"] == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b'[bus]\nlease_tll = "5s"\n', "unknown key(s) in [bus]: lease_tll"),
        (b'[bus]\nzone = "\xff"\n', "not UTF-8 text"),
        (b"[buss]\n", "unknown table(s): buss"),
        (b'[[alerts]]\nname = "x"\nkind = "error_share"\n', "needs a threshold"),
        (b'[policy]\n"retry.max_attemps" = 2\n', "retry.max_attemps: unknown policy setting"),
        (b"[bus\n", "bus.toml"),
    ],
)
def test_a_bad_file_is_one_line_naming_what_is_wrong(tmp_path, text, expected):
    config = tmp_path / "bus.toml"
    config.write_bytes(text)
    result = check(str(config))
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert expected in line
