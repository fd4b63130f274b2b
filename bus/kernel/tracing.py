"""Whether to trace, and where to: OpenTelemetry stays unloaded unless an OTLP endpoint is set.

Tracing is off by default and then costs nothing: no OpenTelemetry module is imported and
every hook is one ``is None`` test. It is on when an endpoint is configured, in this order:
the ``otlp_endpoint`` setting (``--otlp-endpoint``, ``POWERBUS_OTLP_ENDPOINT`` or the TOML
table), then the standard ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` and
``OTEL_EXPORTER_OTLP_ENDPOINT`` variables. Spans are then exported over OTLP/gRPC
(:mod:`powerbus.bus.kernel.otel`).

>>> otlp_endpoint("", env={})
''
>>> otlp_endpoint("", env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"})
'http://collector:4317'
>>> otlp_endpoint("127.0.0.1:4317", env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"})
'http://127.0.0.1:4317'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from powerbus.bus.kernel.errors import ConfigError

if TYPE_CHECKING:
    from powerbus.bus.kernel.otel import Tracing

__all__ = ["ENDPOINT_ENVS", "TRACEPARENT", "TRACESTATE", "otlp_endpoint", "start_tracing"]

TRACEPARENT = "traceparent"
"""W3C Trace Context header, carried as gRPC metadata (and in node-link frames)."""
TRACESTATE = "tracestate"

ENDPOINT_ENVS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
"""The standard variables, read when no ``otlp_endpoint`` is configured (first one set)."""


def otlp_endpoint(configured: str, *, env: Mapping[str, str] | None = None) -> str:
    """The OTLP/gRPC endpoint to export to as ``http(s)://HOST:PORT``, or ``""`` (off).

    A bare ``HOST:PORT`` means plain ``http://``. A value that is neither is a
    :class:`ConfigError` naming where it came from.

    >>> otlp_endpoint("ftp://x", env={})
    Traceback (most recent call last):
    ...
    powerbus.bus.kernel.errors.ConfigError: otlp_endpoint: expected http://HOST:PORT, \
https://HOST:PORT or HOST:PORT, got 'ftp://x'
    """
    source, value = "otlp_endpoint", configured.strip()
    if not value:
        environ = os.environ if env is None else env
        for name in ENDPOINT_ENVS:
            if environ.get(name, "").strip():
                source, value = name, environ[name].strip()
                break
    if not value:
        return ""
    url = urlsplit(value if "://" in value else f"http://{value}")
    try:
        port = url.port
    except ValueError:
        port = None
    if url.scheme not in ("http", "https") or not url.hostname or port is None:
        raise ConfigError(
            f"{source}: expected http://HOST:PORT, https://HOST:PORT or HOST:PORT, got {value!r}"
        )
    return f"{url.scheme}://{url.netloc}"


def start_tracing(configured: str, *, service: str, instance: str) -> Tracing | None:
    """Tracing exported to the configured endpoint, or ``None`` when none is set.

    ``service`` becomes the spans' ``service.name`` (``OTEL_SERVICE_NAME`` overrides it),
    ``instance`` their ``service.instance.id`` (a node id). Call ``shutdown()`` on the
    result when done: it sends the spans still buffered.
    """
    endpoint = otlp_endpoint(configured)
    if not endpoint:
        return None
    # Imported here only: with tracing off no OpenTelemetry module is loaded at all.
    from powerbus.bus.kernel.otel import Tracing

    return Tracing.otlp(endpoint, service=service, instance=instance)
