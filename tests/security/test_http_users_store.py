"""The HTTP users' store (issue 13, item 6) on SQLite and PostgreSQL: passwords are kept
only as salted scrypt hashes, tokens and session ids only as digests; sessions expire;
a new password ends sessions; removing a user removes their tokens and sessions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from powerbus.bus.http_auth import Credential, Role, UserStore
from powerbus.bus.http_auth.roles import required_role
from powerbus.bus.http_auth.tables import sessions, tokens, users
from powerbus.bus.kernel.database import create_engine, read_transaction
from powerbus.bus.kernel.errors import AlreadyExists, InvalidArgument, NotFound

PASSWORD = "a long enough passphrase"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 4, 8, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(engine: sa.Engine, clock: Clock) -> UserStore:
    store = UserStore(engine, clock=clock)
    store.migrate()
    store.migrate()  # every bus start runs it: a second run changes nothing
    return store


def _column(engine: sa.Engine, column: sa.Column) -> list[str]:
    with read_transaction(engine) as conn:
        return [str(v) for v in conn.execute(sa.select(column)).scalars()]


def test_passwords_tokens_and_sessions_are_stored_only_as_hashes(store, engine):
    store.add("wang", Role.OPERATOR, PASSWORD)
    store.add("li", Role.VIEWER, PASSWORD)
    token = store.issue_token("wang", label="cron")
    session = store.start_session("wang", ttl=timedelta(hours=1))
    hashes = _column(engine, users.c.password_hash)
    assert all(h.startswith("scrypt$") and PASSWORD not in h for h in hashes)
    assert len(set(hashes)) == 2, "the same password must hash differently (salted)"
    assert token not in _column(engine, tokens.c.digest)
    assert session not in _column(engine, sessions.c.digest)
    assert token.startswith("pbh_") and len(token) > 40


def test_login_checks_the_password_and_names_the_role(store):
    store.add("wang", Role.OPERATOR, PASSWORD)
    found = store.login("wang", PASSWORD)
    assert found is not None and (found.role, found.credential) == (
        Role.OPERATOR,
        Credential.SESSION,
    )
    assert store.login("wang", PASSWORD + "x") is None
    assert store.login("nobody", PASSWORD) is None


def test_sessions_expire_and_a_new_password_ends_them(store, clock):
    store.add("wang", Role.ADMIN, PASSWORD)
    session = store.start_session("wang", ttl=timedelta(minutes=30))
    assert store.by_session(session).name == "wang"
    clock.now += timedelta(minutes=31)
    assert store.by_session(session) is None
    fresh = store.start_session("wang", ttl=timedelta(minutes=30))
    token = store.issue_token("wang")
    store.set_password("wang", "another long passphrase")
    assert store.by_session(fresh) is None
    assert store.by_token(token).name == "wang"  # tokens outlive a password change
    assert store.login("wang", PASSWORD) is None
    assert store.login("wang", "another long passphrase") is not None


def test_removing_a_user_removes_their_tokens_and_sessions(store):
    store.add("wang", Role.VIEWER, PASSWORD)
    token = store.issue_token("wang")
    session = store.start_session("wang", ttl=timedelta(hours=1))
    store.remove("wang")
    assert store.by_token(token) is None and store.by_session(session) is None
    assert store.count() == 0
    with pytest.raises(NotFound, match="no user 'wang'"):
        store.remove("wang")


def test_bad_names_passwords_and_duplicates_are_refused_naming_what(store):
    with pytest.raises(InvalidArgument, match=r"^password: at least 10"):
        store.add("wang", Role.VIEWER, "short")
    with pytest.raises(InvalidArgument, match=r"^name: "):
        store.add("-x y", Role.VIEWER, PASSWORD)
    store.add("wang", Role.VIEWER, PASSWORD)
    with pytest.raises(AlreadyExists, match="exists already"):
        store.add("wang", Role.ADMIN, PASSWORD)
    with pytest.raises(NotFound):
        store.issue_token("nobody")


def test_listing_counts_tokens_and_live_sessions(store, clock):
    store.add("wang", Role.ADMIN, PASSWORD)
    store.add("li", Role.VIEWER, PASSWORD)
    store.issue_token("li")
    store.issue_token("li")
    store.start_session("wang", ttl=timedelta(minutes=5))
    listed = {u.name: (u.role, u.tokens, u.sessions) for u in store.list_users()}
    assert listed == {"li": (Role.VIEWER, 2, 0), "wang": (Role.ADMIN, 0, 1)}
    clock.now += timedelta(minutes=6)
    assert next(u for u in store.list_users() if u.name == "wang").sessions == 0
    assert store.revoke_tokens("li") == 2


@pytest.mark.parametrize(
    ("method", "path", "needed"),
    [
        ("GET", "/", Role.VIEWER),
        ("GET", "/api/alerts", Role.VIEWER),
        ("POST", "/api/alerts/silence", Role.OPERATOR),
        ("POST", "/api/nodes/echo-1/drain", Role.OPERATOR),
        ("DELETE", "/api/anything", Role.OPERATOR),
        ("GET", "/api/users", Role.ADMIN),
        ("GET", "/api/usersx", Role.VIEWER),
        ("DELETE", "/api/users/li", Role.ADMIN),
        ("GET", "/unknown/page", Role.VIEWER),
        ("POST", "/login", None),
        ("GET", "/static/app.js", None),
    ],
)
def test_each_request_needs_the_role_of_the_table(method, path, needed):
    assert required_role(method, path) is needed
