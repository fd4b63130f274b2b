"""``powerbus config check``: read a bus's configuration as ``powerbus bus`` would, and
say whether it holds, without starting anything."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from powerbus.bus.commands.common import exit_on_error
from powerbus.bus.config import BusConfig
from powerbus.bus.kernel.config import read_toml, resolve
from powerbus.bus.kernel.errors import ConfigError
from powerbus.bus.kernel.tls import TlsFiles
from powerbus.bus.policy import PolicyBook, load_policy_defaults
from powerbus.monitoring import load_monitoring_config
from powerbus.nodes.sdk.config import NodeConfig

__all__ = ["config_app"]

config_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Check configuration files without starting anything.",
)

# Tables a powerbus config file may hold; a node kind's own table (corba_gateway, ...) too.
_KNOWN_TABLES = frozenset(
    {"bus", "node", "monitoring", "alerts", "policy", "corba_gateway", "legacy_cis"}
)


@config_app.command("check")
def check_command(
    config: Annotated[Path, typer.Argument(help="The TOML file (powerbus bus --config FILE).")],
    policy_file: Annotated[
        Path | None,
        typer.Option("--policy-file", help="A separate policy file, as powerbus bus takes."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Read FILE as `powerbus bus --config FILE` (and `powerbus node --config FILE`) would,
    with the POWERBUS_* environment applied, and report what it sets or the first error,
    on one line naming the file and key. Exit status 0 when it holds, 1 when not.

    Example:

    \b
        powerbus config check bus.toml
        powerbus config check bus.toml --policy-file policy.toml --json
    """
    with exit_on_error():
        tables = read_toml(config)
        unknown = sorted(set(tables) - _KNOWN_TABLES)
        if unknown:
            raise ConfigError(f"{config}: unknown table(s): {', '.join(unknown)}")
        bus = resolve(BusConfig, flags={"policy_file": policy_file}, config_file=config)
        monitoring = load_monitoring_config(config_file=config)
        policy = load_policy_defaults(bus.policy_file or config)
        PolicyBook(policy)  # checks every key and value, as the bus does
        # TLS files readable, complete, each certificate with its own key: as at start.
        TlsFiles.from_settings(cert=bus.tls_cert, key=bus.tls_key, ca=bus.tls_ca)
        if "node" in tables:
            node = resolve(NodeConfig, flags={}, config_file=config)
            TlsFiles.from_settings(cert=node.tls_cert, key=node.tls_key, ca=node.tls_ca)
    db = _masked(bus.db)
    summary = {
        "file": str(config),
        "ok": True,
        "bus": {"grpc": str(bus.grpc), "http": str(bus.http), "db": db},
        "alert_rules": [r.name for r in monitoring.rules],
        "policy": {"common": len(policy.common), "services": sorted(policy.services)},
        "environment": sorted(k for k in os.environ if k.startswith("POWERBUS_")),
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    typer.echo(
        f"{config}: ok — bus gRPC {bus.grpc}, HTTP {bus.http}, db {db}; "
        f"{len(monitoring.rules)} alert rules; policy: {len(policy.common)} common "
        f"setting(s), {len(policy.services)} service(s)"
    )


def _masked(url: str) -> str:
    import sqlalchemy as sa

    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url
