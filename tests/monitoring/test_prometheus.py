"""A real Prometheus (Debian's package) scrapes the bus's /metrics, and PromQL counts the
calls this test made."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.nodes.testing import eventually_sync

pytestmark = pytest.mark.slow

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
CALLS = 37


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def prometheus(bus, tmp_path: Path) -> Iterator[str]:
    """Prometheus on loopback, scraping ``bus`` every second; its HTTP address."""
    if not Path(PROMETHEUS).exists():
        pytest.fail("prometheus is not installed (make test installs Debian's package)")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
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
            "--web.enable-lifecycle",
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


def promql(address: str, query: str) -> list[dict]:
    url = f"http://{address}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            body = json.loads(response.read())
    except OSError:
        return []  # not up yet
    return body["data"]["result"] if body.get("status") == "success" else []


def test_prometheus_counts_the_calls_made(bus, node_factory, prometheus):
    node_factory("echo", bus=bus, node_id="echo-1")
    with grpc.insecure_channel(bus.grpc) as channel:
        stub = echo_pb2_grpc.EchoStub(channel)
        metadata = (("x-powerbus-caller", "prometheus-test"),)
        for _ in range(CALLS):
            stub.Echo(echo_pb2.EchoRequest(message="p"), timeout=5, metadata=metadata)

    query = 'sum(powerbus_requests_total{service="powerbus.echo.v1.Echo",caller="prometheus-test"})'

    def scraped() -> float:
        result = promql(prometheus, query)
        return float(result[0]["value"][1]) if result else 0.0

    count = eventually_sync(lambda: scraped() == CALLS, timeout=30, what=f"{CALLS} in Prometheus")
    assert count
    p99 = promql(
        prometheus,
        "histogram_quantile(0.99, sum by (le) (powerbus_request_duration_seconds_bucket))",
    )
    assert p99 and 0 < float(p99[0]["value"][1]) < 5
    up = promql(prometheus, 'powerbus_node_up{node="echo-1"}')
    assert [float(r["value"][1]) for r in up] == [1.0]
