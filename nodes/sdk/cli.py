"""``powerbus node KIND``: run one node until SIGTERM/SIGINT.

The main CLI wires :func:`node_command` in as its ``node`` subcommand;
``python -m powerbus.bus node ...`` is the same command.

A kind may take options of its own (``corba-gateway --ior-file PATH``): they follow the
common ones, reach the kind's ``from_config(..., options={"ior_file": "PATH"})``, and the
kind resolves them with :func:`kind_settings` (flags > ``POWERBUS_*`` > its TOML table).
"""

from __future__ import annotations

import json
import logging
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from powerbus.bus.kernel.addresses import parse_host_port
from powerbus.bus.kernel.config import resolve
from powerbus.bus.kernel.errors import ConfigError, PowerbusError
from powerbus.bus.kernel.lifecycle import run_event_loop
from powerbus.nodes.sdk.config import NodeConfig, NodePriority
from powerbus.nodes.sdk.kinds import NODE_KINDS, kind_options, load_kind
from powerbus.nodes.sdk.node import ConfiguredNode
from powerbus.nodes.sdk.process import run_node

__all__ = ["KIND_CONTEXT", "JsonLogFormatter", "configure_logging", "node_command"]

_KINDS_HELP = f"What to run: {', '.join(sorted(NODE_KINDS))}."

KIND_CONTEXT: dict[str, Any] = {"allow_extra_args": True, "ignore_unknown_options": True}
"""Context settings the ``node`` command is registered with, so kinds get their options.
Register it with ``add_help_option=False`` too: ``--help`` after a KIND shows that kind's
own options, which click's built-in help cannot know."""

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``msg``,
    ``exc`` when there is a traceback, and whatever the call passed as ``extra=``.

    >>> record = logging.LogRecord("powerbus.access", logging.INFO, "", 0, "call", None, None)
    >>> record.created, record.node = 0.0, "echo-1"
    >>> JsonLogFormatter().format(record)
    '{"ts": "1970-01-01T00:00:00.000Z", "level": "INFO", "logger": "powerbus.access", \
"msg": "call", "node": "echo-1"}'
    """

    def format(self, record: logging.LogRecord) -> str:
        moment = time.gmtime(record.created)
        millis = int(record.created * 1000) % 1000
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", moment) + f".{millis:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                entry[key] = value
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextLogFormatter(logging.Formatter):
    """The text format, with ``trace_id=… span_id=…`` at the end of lines logged while a
    span is active (tracing on: :class:`powerbus.bus.kernel.otel.TraceIdLogFilter`).

    >>> record = logging.LogRecord("powerbus", logging.INFO, "", 0, "hello", None, None)
    >>> record.trace_id, record.span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    >>> TextLogFormatter("%(levelname)s %(message)s").format(record)
    'INFO hello trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7'
    """

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        trace_id = getattr(record, "trace_id", None)
        if trace_id is None:
            return text
        return f"{text} trace_id={trace_id} span_id={getattr(record, 'span_id', '')}"


def configure_logging(level: str = "INFO", *, log_format: str = "text") -> None:
    """Log to stderr at ``level``, as text or (``log_format="json"``) one JSON object a
    line, for log shippers (Loki, Elasticsearch, journald)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(TextLogFormatter(_TEXT_FORMAT))
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO), handlers=[handler], force=True
    )


LogFormatOption = Annotated[
    str,
    typer.Option(
        "--log-format",
        metavar="FORMAT",
        help="text, or json: one JSON object per line (ts, level, logger, msg, ...).",
    ),
]


def _kind_options(args: Sequence[str]) -> dict[str, str]:
    """``["--ior-file", "x", "--naming=y"]`` -> ``{"ior_file": "x", "naming": "y"}``."""
    options: dict[str, str] = {}
    position = 0
    while position < len(args):
        arg = args[position]
        if not arg.startswith("--") or arg == "--":
            raise ConfigError(f"unexpected argument {arg!r}")
        name, equals, value = arg[2:].partition("=")
        if not equals:
            if position + 1 >= len(args) or args[position + 1].startswith("--"):
                raise ConfigError(f"option --{name} needs a value")
            position += 1
            value = args[position]
        options[name.replace("-", "_")] = value
        position += 1
    return options


def _build_node(kind: str, settings: NodeConfig, config: Path | None, extra: Sequence[str]) -> Any:
    node_class = load_kind(kind)
    options = _kind_options(extra)
    if issubclass(node_class, ConfiguredNode):
        return node_class.from_config(settings, config_file=config, options=options)
    if options:
        given = ", ".join(f"--{n.replace('_', '-')}" for n in options)
        raise ConfigError(f"kind {kind!r} takes no option {given}")
    return node_class.from_config(settings, config_file=config)


def _kind_help(kind: str) -> str:
    """The help text of ``kind``'s own options, or what is wrong with the kind."""
    if kind not in NODE_KINDS:
        return f"Unknown kind {kind!r}. {_KINDS_HELP}"
    options = kind_options(kind)
    if not options:
        return f"Kind {kind} takes no options of its own."
    lines = [f"Options of {kind} (flags > POWERBUS_* > its TOML table):"]
    for flag, default, text in options:
        value = f" [default: {default}]" if default else ""
        lines.append(f"  {flag} VALUE")
        lines += textwrap.wrap(
            text + value, width=80, initial_indent=" " * 6, subsequent_indent=" " * 6
        )
    return "\n".join(lines)


def _address(value: str | None, field: str) -> str | None:
    """``HOST:PORT`` or a usage error naming the flag (``50051``, ``http://…`` are not)."""
    if value is None:
        return None
    try:
        parse_host_port(value, field=field)
    except PowerbusError:
        raise typer.BadParameter(
            f"expected HOST:PORT such as 127.0.0.1:50051, got {value!r}", param_hint=field
        ) from None
    return value


def node_command(
    ctx: typer.Context,
    kind: Annotated[
        str | None, typer.Argument(metavar="KIND", help=_KINDS_HELP, show_default=False)
    ] = None,
    bus: Annotated[
        str | None, typer.Option("--bus", metavar="HOST:PORT", help="The bus's gRPC address.")
    ] = None,
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen", metavar="HOST:PORT", help="Serve here; port 0 picks one. [127.0.0.1:0]"
        ),
    ] = None,
    node_id: Annotated[
        str | None, typer.Option("--id", metavar="NODE_ID", help="Unique node id, e.g. echo-1.")
    ] = None,
    state_file: Annotated[
        Path | None,
        typer.Option(
            "--state-file",
            metavar="PATH",
            help='Written as {"grpc": ..., "node_id": ...} once registered.',
        ),
    ] = None,
    weight: Annotated[
        int | None, typer.Option("--weight", help="Relative share of traffic. [100]")
    ] = None,
    zone: Annotated[str | None, typer.Option("--zone", help="Locality, e.g. a site.")] = None,
    priority: Annotated[
        NodePriority | None,
        typer.Option("--priority", case_sensitive=False, help="standby: failover only."),
    ] = None,
    lease_ttl: Annotated[
        str | None, typer.Option("--lease-ttl", metavar="DURATION", help="e.g. 10s; bus default")
    ] = None,
    drain_grace: Annotated[
        str | None,
        typer.Option("--drain-grace", metavar="DURATION", help="In-flight call grace. [5s]"),
    ] = None,
    advertise: Annotated[
        str | None,
        typer.Option("--advertise", metavar="HOST:PORT", help="Address to register instead."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", metavar="FILE", help="TOML file with a [node] table.")
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING or ERROR.")
    ] = "INFO",
    log_format: LogFormatOption = "text",
    otlp_endpoint: Annotated[
        str | None,
        typer.Option(
            "--otlp-endpoint",
            metavar="URL",
            help="Send OpenTelemetry spans to this OTLP/gRPC collector, e.g. "
            "http://127.0.0.1:4317. Default: OTEL_EXPORTER_OTLP_ENDPOINT, else no tracing.",
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option("--tls-cert", metavar="PEM", help="Certificate to serve and present."),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", metavar="PEM", help="Key of --tls-cert.")
    ] = None,
    tls_ca: Annotated[
        Path | None,
        typer.Option("--tls-ca", metavar="PEM", help="CA bundle; with it, mTLS both ways."),
    ] = None,
    insecure: Annotated[
        bool | None,
        typer.Option(
            "--insecure/--no-insecure",
            help="Allow plaintext beyond loopback (warned at every start). [off]",
            show_default=False,
        ),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file",
            metavar="FILE",
            help="Bearer token proving the node's identity (powerbus tokens create).",
        ),
    ] = None,
    show_help: Annotated[
        bool, typer.Option("--help", "-h", help="Show this message, and KIND's own options.")
    ] = False,
) -> None:
    """Run a node: serve its gRPC services, register with the bus, heartbeat, drain on
    SIGTERM/SIGINT and exit 0.

    Settings come from flags, then POWERBUS_* environment variables (POWERBUS_BUS,
    POWERBUS_ID, ...), then the [node] table of --config. Options of the kind itself
    follow; `powerbus node KIND --help` lists them (corba-gateway: --iiop,
    --naming-prefix, --corba-timeout, --stubs-dir, ...; legacy-cis: --mapping, ...; see
    docs/corba.md).

    Example, an echo node on a free port, its address written to echo-1.json:

    \b
        powerbus node echo --bus 127.0.0.1:50051 --listen 127.0.0.1:0 \\
            --id echo-1 --state-file echo-1.json
    """
    if show_help or kind is None:
        typer.echo(ctx.get_help())
        if kind is not None:
            typer.echo("\n" + _kind_help(kind))
        raise typer.Exit(0 if show_help else 2)
    if log_level.upper() not in _LOG_LEVELS:
        raise typer.BadParameter(
            f"expected one of {', '.join(_LOG_LEVELS)}", param_hint="--log-level"
        )
    flags = {
        "bus": _address(bus, "--bus"),
        "listen": _address(listen, "--listen"),
        "id": node_id,
        "state_file": state_file,
        "weight": weight,
        "zone": zone,
        "priority": priority,
        "lease_ttl": lease_ttl,
        "drain_grace": drain_grace,
        "advertise": advertise,
        "otlp_endpoint": otlp_endpoint,
        "tls_cert": tls_cert,
        "tls_key": tls_key,
        "tls_ca": tls_ca,
        "insecure": insecure,
        "token_file": token_file,
    }
    try:
        settings = resolve(NodeConfig, flags=flags, config_file=config)
        if settings.bus is None:
            raise ConfigError("bus: required (--bus, POWERBUS_BUS or [node] bus)")
        node = _build_node(kind, settings, config, ctx.args)
    except PowerbusError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(log_level, log_format=log_format)
    try:
        run_event_loop(run_node(node, settings))
    except PowerbusError as exc:
        typer.echo(f"error: {settings.id}: {exc}", err=True)
        raise typer.Exit(1) from None
