"""``powerbus users`` (issue 13, item 6): users and tokens made from the command line, in
the database of a running bus, which honours them at once; passwords never on argv."""

from __future__ import annotations

import json
from pathlib import Path

from http_auth_support import ACTION, call
from typer.testing import CliRunner

from powerbus.bus.cli import app
from powerbus.monitoring.http_client import TOKEN_ENV
from powerbus.nodes.testing import eventually_sync


def users(db: str, *args: str, stdin: str = "", env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["users", *args, "--db", db], input=stdin, env=env)


def test_users_made_by_the_cli_log_in_and_their_tokens_work(bus_factory, tmp_path: Path):
    db = f"sqlite:///{tmp_path / 'bus.db'}"
    bus = bus_factory(db=db)
    # Before any user the loopback development mode serves /api without a login.
    assert call(bus.http, "GET", "/api/nodes").status == 200

    added = users(db, "add", "wang", "--role", "operator", stdin="wang's password\n")
    assert added.exit_code == 0, added.output
    assert added.output == "user wang added (operator)\n"
    secret = tmp_path / "pw"
    secret.write_text("li's long password\n")
    assert users(db, "add", "li", "--role", "viewer", "--password-file", str(secret)).exit_code == 0

    token = users(db, "token", "wang", "--label", "cron").output.strip()
    assert token.startswith("pbh_")
    listed = json.loads(users(db, "list", "--json").output)["users"]
    assert [(u["name"], u["role"], u["tokens"]) for u in listed] == [
        ("li", "viewer", 0),
        ("wang", "operator", 1),
    ]
    table = users(db, "list").output
    assert "wang" in table and max(len(line) for line in table.splitlines()) <= 80

    # The running bus sees them within its 2 s cache: now /api asks for a login.
    eventually_sync(
        lambda: call(bus.http, "GET", "/api/nodes").status == 401, timeout=10, what="login asked"
    )
    assert call(bus.http, "POST", "/api/nodes/purge", token=token).status == 200
    reply = call(
        bus.http,
        "POST",
        "/login",
        headers=ACTION,
        body={"name": "li", "password": "li's long password"},
    )
    assert reply.status == 200

    # The CLI's own HTTP commands take the token from the environment, and say so without.
    listed_alerts = CliRunner().invoke(
        app, ["alerts", "list", "--http", bus.http, "--json"], env={TOKEN_ENV: token}
    )
    assert listed_alerts.exit_code == 0, listed_alerts.output
    refused = CliRunner().invoke(app, ["alerts", "list", "--http", bus.http], env={TOKEN_ENV: ""})
    assert refused.exit_code == 1 and TOKEN_ENV in refused.output

    # passwd ends sessions; remove takes the tokens along.
    assert users(db, "passwd", "li", stdin="li's new password\n").exit_code == 0
    assert users(db, "token", "wang", "--revoke").output == "1 token(s) of wang revoked\n"
    assert users(db, "remove", "wang").exit_code == 0
    gone = users(db, "remove", "wang")
    assert gone.exit_code == 1 and "no user 'wang'" in gone.output

    # Every change is in the audit record, as the operator on this host.
    audit = CliRunner().invoke(app, ["audit", "--action", "user", "--json", "--db", db])
    record = [(e["action"], e["target"]) for e in reversed(json.loads(audit.output))]
    assert record == [
        ("user.add", "user/wang"),
        ("user.add", "user/li"),
        ("user.token.create", "user/wang"),
        ("user.passwd", "user/li"),
        ("user.token.revoke", "user/wang"),
        ("user.remove", "user/wang"),
    ]


def test_the_cli_refuses_short_passwords_and_has_no_password_option(tmp_path: Path):
    db = f"sqlite:///{tmp_path / 'bus.db'}"
    short = users(db, "add", "wang", "--role", "admin", stdin="short\n")
    assert short.exit_code == 1 and "password: at least 10 characters" in short.output
    on_argv = users(db, "add", "wang", "--role", "admin", "--password", "whatever123")
    assert on_argv.exit_code == 2 and "No such option" in on_argv.output
    bad_role = users(db, "add", "wang", "--role", "root", stdin="long password\n")
    assert bad_role.exit_code == 2 and "viewer" in bad_role.output
