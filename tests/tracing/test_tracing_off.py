"""Tracing is off unless an OTLP endpoint is configured, and then costs nothing: no
OpenTelemetry module is even imported. A bad endpoint is an error naming it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from powerbus.bus.config import BusConfig
from powerbus.bus.kernel.config import resolve
from powerbus.bus.kernel.errors import ConfigError
from powerbus.bus.kernel.tracing import otlp_endpoint, start_tracing
from powerbus.nodes.sdk.config import NodeConfig


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


@pytest.mark.parametrize("settings", [BusConfig, NodeConfig])
def test_a_bad_configured_endpoint_is_refused_with_the_settings(settings: type) -> None:
    # Refused when the settings are read (so `powerbus config check` and start-up name it),
    # before anything is started.
    flags = {"otlp_endpoint": "ftp://collector:4317", "id": "echo-1"}
    if settings is BusConfig:
        del flags["id"]
    with pytest.raises(ConfigError, match=r"otlp_endpoint: .*got 'ftp://collector:4317'"):
        resolve(settings, flags=flags, env={})
    flags["otlp_endpoint"] = "collector:4317"
    assert resolve(settings, flags=flags, env={}).otlp_endpoint == "collector:4317"
