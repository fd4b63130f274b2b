"""Where the bus could show a payload without a test of real processes seeing it: the
modules on the call path never hand a payload to a logger (checked on the source), and a
span's error status masks the phone or ID number a node's details quote."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from powerbus.bus.kernel.calls import CallRecord
from powerbus.bus.kernel.otel import Tracing
from powerbus.load_balancer import StatusCode

ROOT = Path(__file__).resolve().parents[2]
# Every module a routed call's bytes pass through, and the ones that record the call.
CALL_PATH = (
    *sorted((ROOT / "bus" / "router").glob("*.py")),
    *sorted((ROOT / "bus" / "transport").glob("*.py")),
    ROOT / "bus" / "access_log.py",
    ROOT / "bus" / "kernel" / "calls.py",
    ROOT / "monitoring" / "recorder.py",
    ROOT / "monitoring" / "tally.py",
)
# What a payload is called on the call path (requests, replies, their frames and bytes).
PAYLOAD_NAMES = {
    "body",
    "chunk",
    "data",
    "frame",
    "frames",
    "message",
    "payload",
    "raw",
    "reply",
    "request",
    "requests",
    "response",
}
LEVELS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "log"}
LOGGERS = {"log", "logger", "logging", "_log", "LOG"}


def payload_logging(source: str, filename: str) -> list[str]:
    """Every logging or print call in ``source`` that is given a payload-named value."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        is_log = (
            isinstance(func, ast.Attribute)
            and func.attr in LEVELS
            and isinstance(func.value, ast.Name)
            and func.value.id in LOGGERS
        )
        is_print = isinstance(func, ast.Name) and func.id == "print"
        if not (is_log or is_print):
            continue
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            for part in ast.walk(arg):
                name = (
                    part.id
                    if isinstance(part, ast.Name)
                    else part.attr
                    if isinstance(part, ast.Attribute)
                    else None
                )
                if name in PAYLOAD_NAMES:
                    found.append(f"{filename}:{node.lineno}: logs {name}")
    return found


def test_the_checker_finds_a_logged_payload() -> None:
    bad = 'log.debug("got %r", request)\nlogger.info("x", extra={"p": reply.payload})\n'
    assert sorted(payload_logging(bad, "bad.py")) == [
        "bad.py:1: logs request",
        "bad.py:2: logs payload",
        "bad.py:2: logs reply",
    ]
    assert payload_logging('log.info("link to %s down: %s", address, reason)\n', "ok.py") == []


def test_the_router_transport_and_recorder_never_log_payloads() -> None:
    assert len(CALL_PATH) > 10 and all(p.exists() for p in CALL_PATH)
    found = [
        hit
        for path in CALL_PATH
        for hit in payload_logging(path.read_text("utf-8"), str(path.relative_to(ROOT)))
    ]
    assert found == []


def test_what_the_recorder_is_told_of_a_call_holds_no_payload() -> None:
    # Monitoring (the recorder, the dashboard's samples, the rollups) and the access log see
    # a call only as a CallRecord: sizes, never bytes.
    fields = {f.name: str(f.type) for f in dataclasses.fields(CallRecord)}
    assert not set(fields) & PAYLOAD_NAMES
    assert not [name for name, kind in fields.items() if "bytes" in kind or "Message" in kind]
    assert {"bytes_in", "bytes_out"} <= set(fields)  # counted, as ints


def test_a_span_status_masks_what_the_details_quote() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing(provider)
    try:
        span = tracing.server_span("/powerbus.crm.v1.Customers/GetCustomer", ())
        tracing.finish(span, StatusCode.NOT_FOUND, "customer '13812341234' not found")
    finally:
        tracing.shutdown()
    (finished,) = exporter.get_finished_spans()
    assert finished.status.description == "NOT_FOUND: customer '138****1234' not found"
