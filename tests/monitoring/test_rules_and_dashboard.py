"""The Prometheus rules and the Grafana dashboard in the repository work: promtool checks
and unit-tests the rules, and a real Prometheus, loading them while scraping a real bus,
answers every query of the dashboard."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from test_prometheus import PROMETHEUS, free_port

from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.nodes.testing import eventually_sync

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "prometheus" / "powerbus-rules.yml"
RULE_TESTS = ROOT / "monitoring" / "prometheus" / "powerbus-rules.test.yml"
DASHBOARD = ROOT / "monitoring" / "grafana" / "powerbus-dashboard.json"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if not Path(PROMTOOL).exists():
        pytest.fail("promtool is not installed (make system-deps installs prometheus)")
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60)


def test_promtool_checks_the_rules():
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_of_the_rules_pass():
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expr) for every target, Grafana's variables filled in as Grafana
    would for "All" services."""
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    found = []
    for panel in board["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", "1m").replace("$service", ".+")
            found.append((panel["title"], expr))
    return found


def test_the_dashboard_is_grafana_json_with_one_datasource_variable():
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)) and dashboard_queries()
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def query(address: str, expr: str) -> dict:
    url = f"http://{address}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture
def prometheus_with_rules(bus, tmp_path: Path) -> Iterator[str]:
    """Prometheus scraping ``bus`` every second and evaluating the repository's rules."""
    if not Path(PROMETHEUS).exists():
        pytest.fail("prometheus is not installed (make system-deps installs it)")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files: ['{RULES}']\n"
        "scrape_configs:\n  - job_name: powerbus\n"
        f"    static_configs:\n      - targets: ['{bus.http}']\n",
        encoding="utf-8",
    )
    address = f"127.0.0.1:{free_port()}"
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address={address}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        yield address
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


def test_every_dashboard_query_runs_against_a_real_bus(bus, node_factory, prometheus_with_rules):
    node_factory("echo", bus=bus, node_id="echo-1")
    address = prometheus_with_rules

    def call_some() -> None:
        with grpc.insecure_channel(bus.grpc) as channel:
            stub = echo_pb2_grpc.EchoStub(channel)
            for _ in range(20):
                stub.Echo(echo_pb2.EchoRequest(message="g"), timeout=5)

    def recorded() -> bool:
        call_some()  # keep rates above zero while the windows fill
        try:
            body = query(address, "powerbus:requests:rate1m")
        except OSError:
            return False  # not up yet
        return bool(body["data"]["result"])

    eventually_sync(recorded, timeout=60, what="the recording rules to have data")
    empty = []
    for title, expr in dashboard_queries():
        body = query(address, expr)
        assert body["status"] == "success", (title, expr, body)
        if not body["data"]["result"]:
            empty.append(expr)
    # Series of faults (retries, breakers, ejections, CORBA) and of calls in flight do not
    # exist on a healthy, idle bus; everything else must have data.
    quiet = ("retries", "breaker", "panic", "ejected", "iiop", "in_flight")
    assert [e for e in empty if not any(word in e for word in quiet)] == []
    with urllib.request.urlopen(f"http://{address}/api/v1/rules", timeout=5) as response:
        groups = json.loads(response.read())["data"]["groups"]
    health = {r["name"]: r["health"] for g in groups for r in g["rules"]}
    assert health and set(health.values()) == {"ok"}, health
