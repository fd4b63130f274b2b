"""The demo and the README as a new operator follows them (issue 14, defect 5)."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO = [sys.executable, "-m", "powerbus.bus", "demo", "--grpc", "127.0.0.1:0"]


def demo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DEMO, "--http", "127.0.0.1:0", "--duration", "1", "--no-domains", *args],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )


def test_demo_makes_its_workdir_and_points_at_the_dashboard(tmp_path):
    work = tmp_path / "not" / "yet" / "made"
    result = demo("--workdir", str(work))
    assert result.returncode == 0, result.stderr
    assert (work / "bus.db").exists()
    assert re.search(r"dashboard http://127\.0\.0\.1:\d+/\n", result.stdout), result.stdout
    assert "/api/nodes" not in result.stdout


def test_demo_without_a_workdir_leaves_no_temporary_folder(tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    result = demo(env={**os.environ, "TMPDIR": str(temp)})
    assert result.returncode == 0, result.stderr
    assert list(temp.iterdir()) == []


def test_default_demo_bills_last_month_collects_through_two_banks_and_reconciles(tmp_path):
    """The default demo: last month billed from the DL/T 645 meters' own month-start
    freezes, both banks' collections posted and applied, each bank reconciled."""
    result = subprocess.run(
        [*DEMO, "--http", "127.0.0.1:0", "--duration", "1", "--workdir", tmp_path],
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert re.search(r"ready in \d+\.\d s", out), out
    assert "read back the month-start freezes of 12 of 12 DL/T 645 meters" in out, out
    billed = re.search(r"run \d{4}-\d\d: \w+; (\d+) bills, [\d,]+\.\d\d yuan", out)
    assert billed and int(billed.group(1)) > 0, out
    for bank in ("0102", "0103"):
        assert re.search(rf"对账 bank {bank} settlement [\d-]+: BALANCED", out), out
        assert (tmp_path / f"bank-sim-{bank}.json").exists()
    assert re.search(r"bills now: .*\bpaid\b", out), out
    shown = out[out.index("metering-1 read back") : out.index("bills now:")]
    assert max(len(line) for line in shown.splitlines()) <= 80, shown
    assert "stopped bank-0103, bank-0102" in out
    # mTLS and access control on: every call the demo makes is one its rules allow.
    assert (tmp_path / "certs" / "ca.pem").exists()
    refused = [
        f"{log.name}: {line}"
        for log in tmp_path.glob("*.err")
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
        if "may not" in line
    ]
    assert refused == [], refused[:5]
    # Billing and payment publish through their outboxes: the bus stored their events.
    with sqlite3.connect(tmp_path / "bus.db") as db:
        published = dict(db.execute("SELECT source, latest_sequence FROM events_sources"))
    assert published.get("billing-1", 0) > int(billed.group(1)), published
    assert published.get("payment-1", 0) > 0, published
    # Every call through the bus succeeded, the demo's own waits too: an operator who
    # opens the dashboard finds no error-share alert the demo made itself.
    with sqlite3.connect(tmp_path / "bus.db") as db:
        codes = {
            (service.rsplit(".", 1)[-1], method, code): count
            for service, method, code, count in db.execute(
                "SELECT service, method, code, sum(count) FROM monitoring_rollups"
                " WHERE resolution_s = (SELECT min(resolution_s) FROM monitoring_rollups)"
                " GROUP BY service, method, code"
            )
        }
    assert codes.get(("Metering", "SummarizeUsage", "OK"), 0) > 0, codes
    assert {key: n for key, n in codes.items() if key[2] != "OK"} == {}, codes


def readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_impact_example_names_a_node_the_tour_starts():
    text = readme()
    started = set(re.findall(r"powerbus node \w[\w-]* .*--id ([\w-]+)", text))
    (impact,) = re.findall(r"powerbus topology --impact ([\w-]+)", text)
    assert impact in started, (impact, started)


def test_readme_corba_block_starts_omninames_on_loopback_before_the_gateway():
    text = readme()
    block = text[text.index("## CORBA") :]
    block = block[: block.index("```", block.index("```sh") + 5)]
    names = block.index("omniNames -start 2809")
    assert "-ORBendPoint giop:tcp:127.0.0.1:2809" in block[names:]
    assert names < block.index("powerbus node corba-gateway")
