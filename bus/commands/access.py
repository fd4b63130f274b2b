"""``powerbus tokens``, ``powerbus acl`` and ``powerbus audit``: identities, rules and the
record of administrative changes.

They act on the bus's database directly (the one `powerbus bus --db` uses), as an
operator on the bus's host: every running bus picks a change up within a second or so.
Each change is recorded in the audit table as ``local/<os user>`` from this host.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from powerbus.bus.access.audit import Actor
from powerbus.bus.access.rule_store import parse_effect, parse_right
from powerbus.bus.access.store import AccessStore
from powerbus.bus.commands.common import JsonOption, exit_on_error
from powerbus.bus.config import BusConfig
from powerbus.bus.kernel.access_rules import Right
from powerbus.bus.kernel.config import parse_duration, resolve
from powerbus.bus.kernel.errors import ConfigError

__all__ = ["acl_app", "audit_command", "tokens_app"]

tokens_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)
acl_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="The bus's database (SQLAlchemy URL). Default: [bus] db of --config, "
        "POWERBUS_DB, else sqlite:///powerbus.db.",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="TOML file whose [bus] table names the db.")
]


@contextmanager
def _store(db: str | None, config: Path | None) -> Iterator[AccessStore]:
    with exit_on_error():
        url = resolve(BusConfig, flags={"db": db}, config_file=config).db
        _require_database(url)
        store = AccessStore.open(url)
        try:
            yield store
        finally:
            store.close()


def _require_database(url: str) -> None:
    """Refuse a SQLite file that is not there: run in the wrong folder, the command would
    otherwise make an empty database and report no tokens or no rules."""
    parsed = make_url(url)
    path = parsed.database
    local_file = parsed.get_backend_name() == "sqlite" and path and path != ":memory:"
    if local_file and not Path(str(path)).exists():
        raise ConfigError(
            f"db: no bus database at {path}; give the bus's --db URL or its --config "
            "(run `powerbus bus` once to create one)"
        )


def _table(*columns: str) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _when(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


# -- tokens ------------------------------------------------------------------------------


@tokens_app.command("create")
def tokens_create(
    identity: Annotated[
        str,
        typer.Argument(help="Who the token proves: node/ID or client/NAME.", show_default=False),
    ],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Issue a bearer token proving IDENTITY; it is printed once and stored only hashed.

    A node presents it with --token-file (or [node] token_file); operator commands with
    POWERBUS_TOKEN. Without TLS, a token is how a node proves it holds its node id.

    Example:

    \b
        powerbus tokens create node/echo-1 > echo-1.token && chmod 600 echo-1.token
        powerbus node echo --bus 127.0.0.1:50051 --id echo-1 --token-file echo-1.token
    """
    with _store(db, config) as store, exit_on_error():
        issued = store.tokens.create(identity, Actor.local())
    typer.echo(issued.text)
    typer.secho(f"token {issued.token_id} for {identity}: shown once, keep it secret", err=True)


@tokens_app.command("list")
def tokens_list(
    all_: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
    as_json: JsonOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """List tokens (never their secrets)."""
    with _store(db, config) as store:
        found = store.tokens.listed(include_revoked=all_)
    if as_json:
        rows = [
            {
                "token_id": t.token_id,
                "identity": t.identity,
                "created_at": t.created_at.isoformat(),
                "created_by": t.created_by,
                "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
            }
            for t in found
        ]
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    if not found:
        typer.echo("no tokens")
        return
    table = _table("token", "identity", "created", "by", "state")
    for t in found:
        state = "live" if t.live else f"revoked {_when(t.revoked_at)}" if t.revoked_at else ""
        table.add_row(t.token_id, t.identity, _when(t.created_at), t.created_by, state)
    Console().print(table)


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (tokens list).")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Revoke a token: every bus refuses it within a second or so."""
    with _store(db, config) as store, exit_on_error():
        revoked = store.tokens.revoke(token_id, Actor.local())
    typer.echo(f"token {revoked.token_id} of {revoked.identity} revoked")


# -- acl ---------------------------------------------------------------------------------

_RIGHTS_HELP = ", ".join(r.value for r in Right)


@acl_app.command("add")
def acl_add(
    identity: Annotated[
        str,
        typer.Argument(
            help="Identity pattern: node/billing-*, client/ops, * or anonymous.",
            show_default=False,
        ),
    ],
    right: Annotated[str, typer.Argument(help=f"One of {_RIGHTS_HELP}.", show_default=False)],
    target: Annotated[
        str,
        typer.Argument(
            help="Target pattern: pkg.Service/Method for call, pkg.Service for serve and "
            "policy, registry for read, traffic for report.",
            show_default=False,
        ),
    ],
    deny: Annotated[bool, typer.Option("--deny", help="A deny rule (wins over allows).")] = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Add a rule. With --access-control on, a request is denied if a rule denies it,
    allowed if one allows it, and denied when no rule speaks to it.

    Example:

    \b
        powerbus acl add 'node/echo-*' serve powerbus.echo.v1.Echo
        powerbus acl add 'node/billing-*' call 'powerbus.metering.v1.*/*'
        powerbus acl add client/ops policy '*'
        powerbus acl add '*' call '*/DeleteMeter' --deny
    """
    with _store(db, config) as store, exit_on_error():
        effect = parse_effect("deny" if deny else "allow")
        rule = store.rules.add(identity, parse_right(right), target, effect, Actor.local())
    typer.echo(f"rule {rule.rule_id}: {rule}")


@acl_app.command("list")
def acl_list(as_json: JsonOption = False, db: DbOption = None, config: ConfigOption = None) -> None:
    """List the rules, by id."""
    with _store(db, config) as store:
        found = store.rules.listed()
    if as_json:
        rows = [
            {
                "rule_id": r.rule_id,
                "identity": r.identity,
                "right": r.right.value,
                "target": r.target,
                "effect": r.effect.value,
            }
            for r in found
        ]
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    if not found:
        typer.echo("no rules (with --access-control on, everything is denied)")
        return
    table = _table("id", "effect", "identity", "right", "target")
    for r in found:
        table.add_row(str(r.rule_id), r.effect.value, r.identity, r.right.value, r.target)
    Console().print(table)


@acl_app.command("remove")
def acl_remove(
    rule_id: Annotated[int, typer.Argument(help="The rule's id (acl list).")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Remove a rule."""
    with _store(db, config) as store, exit_on_error():
        rule = store.rules.remove(rule_id, Actor.local())
    typer.echo(f"rule {rule.rule_id} removed: {rule}")


@acl_app.command("check")
def acl_check(
    identity: Annotated[str, typer.Argument(help="An identity: node/echo-1, client/ops.")],
    right: Annotated[str, typer.Argument(help=f"One of {_RIGHTS_HELP}.")],
    target: Annotated[str, typer.Argument(help="What it would act on.")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Say whether the rules allow IDENTITY to RIGHT TARGET, and which rule decides.
    Exit status 0 when allowed, 1 when denied."""
    with _store(db, config) as store, exit_on_error():
        decision = store.rules.rule_set().decide(identity, parse_right(right), target)
    verdict = "allowed" if decision.allowed else "denied"
    typer.echo(f"{identity} {right} {target}: {verdict}, {decision.reason}")
    raise typer.Exit(0 if decision.allowed else 1)


# -- audit -------------------------------------------------------------------------------


def audit_command(
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help="Only entries this recent: 30m, 24h, 168h.", show_default=False
        ),
    ] = None,
    action: Annotated[
        str,
        typer.Option("--action", help="Only actions starting so: policy, token, rule, node."),
    ] = "",
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")] = 50,
    as_json: JsonOption = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """List the audit record: policy changes, node actions, token and rule changes, each
    with the identity that made it, its peer address, and before/after.

    Example:

    \b
        powerbus audit --since 24h --action policy
    """
    with exit_on_error():
        start = (
            datetime.now(timezone.utc) - parse_duration(since, field="--since") if since else None
        )
    with _store(db, config) as store:
        entries = store.audit.entries(since=start, action=action, limit=limit)
    if as_json:
        typer.echo(json.dumps([e.as_json() for e in entries], ensure_ascii=False))
        return
    if not entries:
        typer.echo("no audit entries")
        return
    table = _table("at", "who", "action", "target", "change")
    for e in entries:
        change = _change(e.before, e.after)
        table.add_row(_when(e.at), f"{e.identity}\n{e.peer}", e.action, e.target, change)
    Console().print(table)


def _flat(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _change(before: object, after: object) -> str:
    def short(value: object) -> str:
        if isinstance(value, dict):
            text = ", ".join(f"{k}={_flat(v)}" for k, v in value.items())
        else:
            text = _flat(value)
        return text if len(text) <= 80 else text[:77] + "..."

    parts = []
    if before is not None:
        parts.append(f"- {short(before)}")
    if after is not None:
        parts.append(f"+ {short(after)}")
    return "\n".join(parts)
