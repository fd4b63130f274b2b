"""``powerbus users``: the users of the dashboard and ``/api``, and their API tokens.

The commands work on the bus's database directly (``--db``, or ``[bus] db`` of
``--config``): whoever may change that database may manage users, and a bus instance
sees a change within two seconds. Each change is in the audit record (``powerbus
audit``) as ``local/<os user>``. Passwords are never taken on the command line, where
``ps`` and shell history would show them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from powerbus.bus.access.store import AccessStore
from powerbus.bus.commands.common import JsonOption, exit_on_error
from powerbus.bus.config import BusConfig
from powerbus.bus.http_auth import Role, UserStore
from powerbus.bus.kernel.config import resolve
from powerbus.bus.kernel.database import create_engine
from powerbus.bus.kernel.errors import InvalidArgument

__all__ = ["users_app"]

users_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="The bus's database, a SQLAlchemy URL (POWERBUS_DB). Default sqlite:///powerbus.db.",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="TOML file whose [bus] db names the database.")
]
NameArgument = Annotated[str, typer.Argument(help="The user's name.", show_default=False)]
PasswordFileOption = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        help="Read the password from the first line of this file ('-': stdin). "
        "Default: stdin when it is not a terminal, else asked twice.",
    ),
]


@contextmanager
def _store(db: str | None, config: Path | None) -> Iterator[UserStore]:
    url = resolve(BusConfig, flags={"db": db}, config_file=config).db
    engine = create_engine(url)
    try:
        # Changes are audited (as local/<os user>) in the access store's table.
        access = AccessStore(engine)
        access.migrate()
        store = UserStore(engine, audit=access.audit)
        store.migrate()
        yield store
    finally:
        engine.dispose()


def _password(path: Path | None) -> str:
    """The new password: from ``path``, piped stdin, or asked twice on the terminal."""
    if path is not None and str(path) != "-":
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidArgument("--password-file", f"{path}: {exc.strerror}") from None
    elif path is not None or not sys.stdin.isatty():
        text = sys.stdin.readline()
    else:
        return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))
    password = text.splitlines()[0] if text.strip() else ""
    if not password:
        raise InvalidArgument("password", "empty: give it on the first line")
    return password


@users_app.command("add")
def add_command(
    name: NameArgument,
    role: Annotated[
        Role, typer.Option("--role", help="viewer (reads), operator (acts) or admin (users).")
    ],
    password_file: PasswordFileOption = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Add a user who may log in to the dashboard and /api with ROLE.

    Once any user exists, the bus asks everyone for a login (docs/security.md).

    Example:

    \b
        powerbus users add wang --role admin                  # asks for the password
        printf '%s\\n' "$PW" | powerbus users add ops --role operator --db sqlite:///bus.db
    """
    with exit_on_error(), _store(db, config) as store:
        store.add(name, role, _password(password_file))
    typer.echo(f"user {name} added ({role.value})")


@users_app.command("list")
def list_command(
    db: DbOption = None, config: ConfigOption = None, as_json: JsonOption = False
) -> None:
    """The users, their roles, API tokens and live sessions.

    Example:

        powerbus users list --db sqlite:///powerbus.db
    """
    with exit_on_error(), _store(db, config) as store:
        found = store.list_users()
    if as_json:
        rows = [
            {
                "name": u.name,
                "role": u.role.value,
                "created_at": u.created_at.isoformat(),
                "password_changed_at": u.password_changed_at.isoformat(),
                "tokens": u.tokens,
                "sessions": u.sessions,
            }
            for u in found
        ]
        typer.echo(json.dumps({"users": rows}, indent=2, ensure_ascii=False))
        return
    table = Table(title="HTTP users", title_justify="left")
    for column, justify in (
        ("name", "left"),
        ("role", "left"),
        ("created", "left"),
        ("password set", "left"),
        ("tokens", "right"),
        ("sessions", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for u in found:
        table.add_row(
            u.name,
            u.role.value,
            u.created_at.strftime("%Y-%m-%d %H:%M"),
            u.password_changed_at.strftime("%Y-%m-%d %H:%M"),
            str(u.tokens),
            str(u.sessions),
        )
    Console().print(table if found else "no users: the dashboard is open to loopback only")


@users_app.command("remove")
def remove_command(name: NameArgument, db: DbOption = None, config: ConfigOption = None) -> None:
    """Remove a user with their API tokens and sessions (logged out at once).

    Example:

        powerbus users remove wang
    """
    with exit_on_error(), _store(db, config) as store:
        store.remove(name)
    typer.echo(f"user {name} removed, with their tokens and sessions")


@users_app.command("passwd")
def passwd_command(
    name: NameArgument,
    password_file: PasswordFileOption = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Set a user's password; their sessions end (API tokens stay).

    Example:

        powerbus users passwd wang
    """
    with exit_on_error(), _store(db, config) as store:
        store.set_password(name, _password(password_file))
    typer.echo(f"password of {name} changed; their sessions ended")


@users_app.command("token")
def token_command(
    name: NameArgument,
    label: Annotated[str, typer.Option("--label", help="What the token is for.")] = "",
    revoke: Annotated[
        bool, typer.Option("--revoke", help="Revoke every token of NAME instead.")
    ] = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Print a new API token of NAME (with NAME's role), once: only a digest is kept.

    Scripts send it as 'Authorization: Bearer TOKEN'; the powerbus commands that read
    the HTTP port take it from POWERBUS_HTTP_TOKEN.

    Example:

    \b
        export POWERBUS_HTTP_TOKEN=$(powerbus users token grafana --label scrape)
        curl -H "Authorization: Bearer $POWERBUS_HTTP_TOKEN" http://127.0.0.1:8080/api/nodes
        powerbus users token grafana --revoke
    """
    with exit_on_error(), _store(db, config) as store:
        if revoke:
            count = store.revoke_tokens(name)
            typer.echo(f"{count} token(s) of {name} revoked")
            return
        token = store.issue_token(name, label=label)
    typer.echo(token)
