"""``powerbus bus``: run one bus instance."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from powerbus.bus.commands.common import LogFormatOption, configure_logging, exit_on_error
from powerbus.bus.commands.tls_options import (
    InsecureOption,
    TlsCaOption,
    TlsCertOption,
    TlsKeyOption,
)
from powerbus.bus.config import BusConfig
from powerbus.bus.kernel.config import resolve
from powerbus.bus.kernel.lifecycle import run_until_signalled
from powerbus.bus.policy import PolicyBook, load_policy_defaults
from powerbus.bus.server import BusServer, Reloaded
from powerbus.monitoring import load_monitoring_config

__all__ = ["bus_command"]


def bus_command(
    grpc: Annotated[
        str | None,
        typer.Option(
            "--grpc",
            help="gRPC listen address HOST:PORT (port 0: any free port). Default 127.0.0.1:50051.",
        ),
    ] = None,
    http: Annotated[
        str | None,
        typer.Option(
            "--http",
            help="HTTP listen address (dashboard, /metrics, /api). Default 127.0.0.1:8080.",
        ),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db", help="Registry database, a SQLAlchemy URL. Default sqlite:///powerbus.db."
        ),
    ] = None,
    state_file: Annotated[
        Path | None,
        typer.Option(
            "--state-file",
            help="Write the addresses actually listened on here, as JSON, once serving.",
        ),
    ] = None,
    lease_ttl: Annotated[
        str | None, typer.Option("--lease-ttl", help="Default node lease, e.g. 10s.")
    ] = None,
    allowed_networks: Annotated[
        str | None,
        typer.Option(
            "--allowed-networks",
            help="CIDRs, comma-separated, node addresses must be in to register. "
            "Default: loopback and private ranges; link-local and metadata are always refused.",
        ),
    ] = None,
    register_rate: Annotated[
        float | None,
        typer.Option(
            "--register-rate", help="Registrations a second per peer host, after the burst. [50]"
        ),
    ] = None,
    register_burst: Annotated[
        int | None,
        typer.Option("--register-burst", help="Registrations a peer host may make at once. [200]"),
    ] = None,
    policy_file: Annotated[
        Path | None,
        typer.Option(
            "--policy-file",
            help="TOML file whose [policy] table sets load-balancing defaults "
            "(default: the [policy] table of --config).",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML file whose [bus] table sets options not given as flags or POWERBUS_*.",
        ),
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")
    ] = "INFO",
    log_format: LogFormatOption = "text",
    tls_cert: TlsCertOption = None,
    tls_key: TlsKeyOption = None,
    tls_ca: TlsCaOption = None,
    insecure: InsecureOption = None,
    access_control: Annotated[
        bool | None,
        typer.Option(
            "--access-control/--no-access-control",
            help="Decide every call, registration, policy change and traffic report by the "
            "rules of `powerbus acl`, denying what no rule allows. [off]",
            show_default=False,
        ),
    ] = None,
    access_log: Annotated[
        bool | None,
        typer.Option(
            "--access-log/--no-access-log",
            help="Log every routed call (logger powerbus.access), as Envoy does. [off]",
            show_default=False,
        ),
    ] = None,
    otlp_endpoint: Annotated[
        str | None,
        typer.Option(
            "--otlp-endpoint",
            metavar="URL",
            help="Send OpenTelemetry spans of routed calls to this OTLP/gRPC collector, e.g. "
            "http://127.0.0.1:4317. Default: OTEL_EXPORTER_OTLP_ENDPOINT, else no tracing.",
        ),
    ] = None,
    max_request_bytes: Annotated[
        int | None,
        typer.Option(
            "--max-request-bytes",
            help="Largest request body accepted; larger ones are RESOURCE_EXHAUSTED, "
            "unbuffered. Nodes take the same key. [4194304]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run a bus: registry, router, health and reflection on one gRPC port, HTTP beside it.

    Stops cleanly (exit 0) on SIGTERM or SIGINT. SIGHUP re-reads the alert rules
    ([[alerts]], [monitoring] default_alerts) and the policy defaults ([policy]) from the
    files; a file that no longer holds is logged and the running configuration kept.

    Example:

    \b
        powerbus bus --grpc 127.0.0.1:50051 --http 127.0.0.1:8080 --db sqlite:///powerbus.db
        powerbus bus --log-format json --access-log      # JSON lines, one per routed call
        powerbus bus --otlp-endpoint http://127.0.0.1:4317   # traces to a collector
        powerbus bus --grpc 0.0.0.0:50051 --tls-cert certs/bus-main.pem \\
            --tls-key certs/bus-main.key --tls-ca certs/ca.pem   # mTLS (powerbus certs)
        powerbus bus --access-control    # rules decide (powerbus acl, powerbus tokens)

    Without TLS the bus serves plaintext on loopback addresses only; another listen
    address is refused unless --insecure is given (then warned about at every start).
    """
    configure_logging(log_level, log_format=log_format)
    with exit_on_error():
        cfg = resolve(
            BusConfig,
            flags={
                "grpc": grpc,
                "http": http,
                "db": db,
                "state_file": state_file,
                "lease_ttl": lease_ttl,
                "allowed_networks": allowed_networks,
                "register_rate": register_rate,
                "register_burst": register_burst,
                "policy_file": policy_file,
                "access_log": access_log,
                "otlp_endpoint": otlp_endpoint,
                "tls_cert": tls_cert,
                "tls_key": tls_key,
                "tls_ca": tls_ca,
                "insecure": insecure,
                "access_control": access_control,
                "max_request_bytes": max_request_bytes,
            },
            config_file=config,
        )
        if cfg.policy_file is None and config is not None:
            cfg = dataclasses.replace(cfg, policy_file=config)
        # [monitoring] and [[alerts]] of the same file: history, label limits, alert rules.
        monitoring = load_monitoring_config(config_file=config)

        def reload() -> Reloaded:
            policy = load_policy_defaults(cfg.policy_file) if cfg.policy_file else None
            if policy is not None:
                PolicyBook(policy)  # every key and value checked before any is used
            return Reloaded(rules=load_monitoring_config(config_file=config).rules, policy=policy)

        def make() -> BusServer:
            return BusServer(config=cfg, monitoring=monitoring, reload=reload)

        raise typer.Exit(run_until_signalled(make))
