"""Tracing is off unless an OTLP endpoint is configured, and then costs nothing: no
OpenTelemetry module is even imported. A bad endpoint is a one-line error naming it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from powerbus.bus.kernel.errors import ConfigError
from powerbus.bus.kernel.tracing import otlp_endpoint, start_tracing


def test_nothing_of_opentelemetry_is_loaded_with_tracing_off() -> None:
    probe = (
        "import sys\n"
        "import powerbus.bus.server, powerbus.nodes.sdk.runner, powerbus.nodes.sdk.proxyless\n"
        "import powerbus.nodes.corba_gateway.bridge\n"
        "from powerbus.bus.kernel.tracing import start_tracing\n"
        "assert start_tracing('', service='s', instance='') is None\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    env = {"PATH": "/usr/bin:/bin"}  # no OTEL_EXPORTER_OTLP_ENDPOINT from the caller
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_endpoint_comes_from_the_setting_then_the_standard_variables() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://general:4317",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces:4317",
    }
    assert otlp_endpoint("http://set:4317", env=env) == "http://set:4317"
    assert otlp_endpoint("", env=env) == "https://traces:4317"
    assert otlp_endpoint("", env={"OTEL_EXPORTER_OTLP_ENDPOINT": "c:4317"}) == "http://c:4317"
    assert otlp_endpoint("  ", env={}) == ""


@pytest.mark.parametrize("bad", ["ftp://c:4317", "http://collector", "c:port", "http://:4317"])
def test_a_bad_endpoint_is_refused_naming_it(bad: str) -> None:
    with pytest.raises(ConfigError, match=rf"otlp_endpoint: expected .*got {bad!r}"):
        otlp_endpoint(bad, env={})
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_ENDPOINT"):
        otlp_endpoint("", env={"OTEL_EXPORTER_OTLP_ENDPOINT": bad})
    with pytest.raises(ConfigError):
        start_tracing(bad, service="powerbus-bus", instance="")


def test_the_bus_refuses_a_bad_endpoint_in_one_line(tmp_path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "powerbus.bus",
            "bus",
            "--grpc",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--db",
            f"sqlite:///{tmp_path / 'bus.db'}",
            "--otlp-endpoint",
            "ftp://collector:4317",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    errors = [line for line in out.stderr.splitlines() if "otlp_endpoint" in line]
    assert errors == [
        "error: otlp_endpoint: expected http://HOST:PORT, https://HOST:PORT or HOST:PORT, "
        "got 'ftp://collector:4317'"
    ], out.stderr
    assert "Traceback" not in out.stderr
