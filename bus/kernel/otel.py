"""OpenTelemetry spans along the call path, exported over OTLP/gRPC.

Imported only when tracing is on (:func:`powerbus.bus.kernel.tracing.start_tracing`). One
:class:`Tracing` per process owns its tracer provider (no global one is set, so a library
user's own OpenTelemetry set-up is left alone) and offers what the hooks need:

- a server span for a call that arrived, continuing the caller's W3C ``traceparent``
  (the router, an SDK node's middleware);
- a client span for a call made, child of the span active in this task (a node's
  downstream call, the proxyless client), and child spans for each attempt;
- ``inject``: the call's metadata with ``traceparent``/``tracestate`` of a span, which then
  travels as gRPC metadata or in a node-link frame alike.

While a span is active, log records carry ``trace_id`` and ``span_id`` (the JSON log
format shows them as fields, the text format at the end of the line).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator, Mapping

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status
from opentelemetry.trace import StatusCode as SpanStatus
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from powerbus.bus.kernel.masking import scrub
from powerbus.bus.kernel.tracing import TRACEPARENT, TRACESTATE
from powerbus.load_balancer import StatusCode

__all__ = ["Span", "TraceIdLogFilter", "Tracing", "rpc_attributes"]

_EXPORT_TIMEOUT_S = 5
"""Bound of one export call: a collector that is down never holds a process's stop."""
_EXPORT_DELAY_MS = 500
_TRACE_KEYS = (TRACEPARENT, TRACESTATE)

Attributes = Mapping[str, str | int]


def rpc_attributes(path: str, **extra: str | int) -> dict[str, str | int]:
    """OpenTelemetry's rpc attributes of ``/pkg.Service/Method``, plus ``extra``.

    >>> rpc_attributes("/powerbus.echo.v1.Echo/Echo", **{"powerbus.node": "echo-1"})
    {'rpc.system': 'grpc', 'rpc.service': 'powerbus.echo.v1.Echo', 'rpc.method': 'Echo', \
'powerbus.node': 'echo-1'}
    """
    service, _, method = path.lstrip("/").rpartition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method, **extra}


class TraceIdLogFilter(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` (hex, as trace UIs show them) to records logged
    while a span is active."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = trace.format_trace_id(context.trace_id)
            record.span_id = trace.format_span_id(context.span_id)
        return True


class Tracing:
    """Spans of one process, sent to an OTLP collector by a batching exporter.

    >>> # tracing = Tracing.otlp("http://127.0.0.1:4317", service="powerbus-bus", instance="")
    >>> # span = tracing.server_span("/powerbus.echo.v1.Echo/Echo", metadata)
    >>> # metadata = tracing.inject(metadata, tracing.child_span(span, "attempt", {}))
    """

    def __init__(self, provider: TracerProvider) -> None:
        self._provider = provider
        self._tracer = provider.get_tracer("powerbus")
        self._propagator = TraceContextTextMapPropagator()
        self._log_filter = TraceIdLogFilter()
        # The handlers configured at start-up (stderr, text or JSON) get the ids.
        self._handlers = list(logging.getLogger().handlers)
        for handler in self._handlers:
            handler.addFilter(self._log_filter)

    @classmethod
    def otlp(cls, endpoint: str, *, service: str, instance: str) -> Tracing:
        """Export to the OTLP/gRPC collector at ``endpoint`` (``http://`` plain,
        ``https://`` TLS), as ``service`` (``OTEL_SERVICE_NAME`` overrides it)."""
        attributes: dict[str, str] = {
            "service.name": os.environ.get("OTEL_SERVICE_NAME") or service
        }
        if instance:
            attributes["service.instance.id"] = instance
        provider = TracerProvider(resource=Resource.create(attributes), shutdown_on_exit=False)
        exporter = OTLPSpanExporter(
            endpoint=endpoint,
            insecure=endpoint.startswith("http://"),
            timeout=_EXPORT_TIMEOUT_S,
        )
        provider.add_span_processor(
            BatchSpanProcessor(exporter, schedule_delay_millis=_EXPORT_DELAY_MS)
        )
        return cls(provider)

    def shutdown(self) -> None:
        """Send the spans still buffered (bounded by the export timeout) and stop."""
        for handler in self._handlers:
            handler.removeFilter(self._log_filter)
        self._provider.shutdown()

    # Spans.

    def server_span(
        self, path: str, metadata: Iterable[tuple[str, str | bytes]], **extra: str | int
    ) -> Span:
        """A span for a call that arrived, continuing the caller's ``traceparent`` if any
        (else the root of a new trace)."""
        return self._tracer.start_span(
            path.lstrip("/"),
            context=self.parent(metadata) or Context(),
            kind=SpanKind.SERVER,
            attributes=rpc_attributes(path, **extra),
        )

    def client_span(self, name: str, path: str, **extra: str | int) -> Span:
        """A span for a call made from here, child of the span active in this task."""
        return self._tracer.start_span(
            name, kind=SpanKind.CLIENT, attributes=rpc_attributes(path, **extra)
        )

    def child_span(self, parent: Span, name: str, path: str, **extra: str | int) -> Span:
        """A span for one attempt of ``parent``'s call (attempts are concurrent when hedged,
        so the parent is given, not taken from the task)."""
        return self._tracer.start_span(
            name,
            context=trace.set_span_in_context(parent),
            kind=SpanKind.CLIENT,
            attributes=rpc_attributes(path, **extra),
        )

    @staticmethod
    def finish(span: Span, code: StatusCode, details: str = "") -> None:
        """End ``span`` with the call's status; any code but OK marks it an error."""
        span.set_attribute("rpc.grpc.status_code", code.number)
        if code is not StatusCode.OK:
            span.set_status(
                # Traces are shown (Jaeger, Tempo): details quoting a request are masked.
                Status(SpanStatus.ERROR, f"{code}: {scrub(details)}" if details else str(code))
            )
        span.end()

    @staticmethod
    @contextlib.contextmanager
    def active(span: Span) -> Iterator[None]:
        """Make ``span`` the current one in this task: calls made and lines logged inside
        belong to it."""
        with trace.use_span(span, end_on_exit=False, record_exception=False):
            yield

    # Propagation.

    def parent(self, metadata: Iterable[tuple[str, str | bytes]]) -> Context | None:
        """The remote span context a call's ``traceparent`` names, if it has a valid one."""
        carrier = {k: v for k, v in metadata if k in _TRACE_KEYS and isinstance(v, str)}
        if TRACEPARENT not in carrier:
            return None
        context = self._propagator.extract(carrier)
        return context if trace.get_current_span(context).get_span_context().is_valid else None

    def inject(
        self, metadata: Iterable[tuple[str, str | bytes]], span: Span
    ) -> tuple[tuple[str, str | bytes], ...]:
        """``metadata`` with ``span`` as the trace parent, replacing the caller's."""
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, context=trace.set_span_in_context(span))
        kept = tuple((k, v) for k, v in metadata if k not in _TRACE_KEYS)
        return kept + tuple(carrier.items())
