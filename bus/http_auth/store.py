"""HTTP users, their API tokens and login sessions, in the bus's database.

The store is synchronous (SQLAlchemy Core on an injected engine); the bus calls it from
a worker thread. Users are added by ``powerbus users`` straight into the database, so
every bus instance on it sees them at once.

>>> from powerbus.bus.kernel.database import create_engine
>>> engine = create_engine("sqlite://")
>>> store = UserStore(engine)
>>> store.migrate()
>>> store.add("wang", Role.OPERATOR, "a long passphrase")
>>> store.login("wang", "a long passphrase").role, store.login("wang", "wrong")
(<Role.OPERATOR: 'operator'>, None)
>>> token = store.issue_token("wang", label="cron")
>>> store.by_token(token).name
'wang'
>>> engine.dispose()
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from powerbus.bus.access.audit import Actor, AuditLog
from powerbus.bus.http_auth.migrations import MIGRATIONS
from powerbus.bus.http_auth.passwords import (
    MIN_PASSWORD_LENGTH,
    digest_secret,
    hash_password,
    new_secret,
    verify_password,
)
from powerbus.bus.http_auth.roles import Role
from powerbus.bus.http_auth.tables import sessions, tokens, users
from powerbus.bus.kernel.database import read_transaction, write_transaction
from powerbus.bus.kernel.errors import AlreadyExists, InvalidArgument, NotFound
from powerbus.bus.kernel.metadata import HTTP_TOKEN_PREFIX

__all__ = ["TOKEN_PREFIX", "Credential", "Principal", "UserInfo", "UserStore", "check_name"]

TOKEN_PREFIX = HTTP_TOKEN_PREFIX
"""API tokens start with it, so secret scanners and people can tell one in a log."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_MAX_PASSWORD = 1024  # scrypt hashes anything, but a megabyte "password" is an attack


class Credential(str, enum.Enum):
    """How a request proved who sent it."""

    SESSION = "session"
    """The login cookie of a browser: its state-changing requests get the CSRF check."""
    TOKEN = "token"
    """``Authorization: Bearer``: a script's, never sent by a browser on its own."""
    LOOPBACK = "loopback"
    """Nobody: no user exists yet and the request came from this machine (dev mode)."""


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who a request is from."""

    name: str
    role: Role
    credential: Credential


@dataclasses.dataclass(frozen=True)
class UserInfo:
    """A user as ``powerbus users list`` shows it."""

    name: str
    role: Role
    created_at: datetime
    password_changed_at: datetime
    tokens: int
    sessions: int


def check_name(name: str) -> str:
    """``name`` if it is a valid user name, else :class:`InvalidArgument` saying why."""
    if not _NAME.match(name):
        raise InvalidArgument(
            "name", f"{name!r}: 1-64 letters, digits, '.', '_', '@' or '-', not starting with one"
        )
    return name


def _check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidArgument("password", f"at least {MIN_PASSWORD_LENGTH} characters, please")
    if len(password) > _MAX_PASSWORD:
        raise InvalidArgument("password", f"at most {_MAX_PASSWORD} characters")
    return password


class UserStore:
    """Users, tokens and sessions on ``engine`` (whose lifetime the caller owns).

    With ``audit``, every change of a user or token is recorded in the audit table in the
    same transaction, as the ``actor`` the method is given (the operator running this
    process on this host when none is); logins and logouts are logged, not audited."""

    def __init__(
        self,
        engine: Engine,
        *,
        audit: AuditLog | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self._engine = engine
        self._audit = audit
        self._now = clock

    def _record(
        self, conn: Connection, actor: Actor | None, action: str, name: str, **change: object
    ) -> None:
        if self._audit is not None:
            self._audit.add(conn, actor or Actor.local(), action, f"user/{name}", **change)

    def migrate(self) -> None:
        """Create or upgrade the tables (safe on every start)."""
        MIGRATIONS.run(self._engine)

    # ------------------------------------------------------------------ users
    def add(self, name: str, role: Role, password: str, *, actor: Actor | None = None) -> None:
        """A new user; :class:`AlreadyExists` if the name is taken."""
        check_name(name)
        digest = hash_password(_check_password(password))
        now = self._now()
        with write_transaction(self._engine) as conn:
            if self._role_of(conn, name) is not None:
                raise AlreadyExists("name", f"a user {name!r} exists already")
            conn.execute(
                users.insert().values(
                    name=name,
                    role=role.value,
                    password_hash=digest,
                    created_at=now,
                    password_changed_at=now,
                )
            )
            self._record(conn, actor, "user.add", name, after={"role": role.value})

    def remove(self, name: str, *, actor: Actor | None = None) -> None:
        """Delete the user with its tokens and sessions (logged out at once)."""
        with write_transaction(self._engine) as conn:
            role = self._role_of(conn, name)
            if role is None:
                raise NotFound(f"no user {name!r}")
            conn.execute(users.delete().where(users.c.name == name))
            self._record(conn, actor, "user.remove", name, before={"role": role})
            conn.execute(tokens.delete().where(tokens.c.user_name == name))
            conn.execute(sessions.delete().where(sessions.c.user_name == name))

    def set_password(self, name: str, password: str, *, actor: Actor | None = None) -> None:
        """Change the password; the user's sessions end (tokens stay)."""
        digest = hash_password(_check_password(password))
        with write_transaction(self._engine) as conn:
            changed = conn.execute(
                users.update()
                .where(users.c.name == name)
                .values(password_hash=digest, password_changed_at=self._now())
            ).rowcount
            if not changed:
                raise NotFound(f"no user {name!r}")
            conn.execute(sessions.delete().where(sessions.c.user_name == name))
            self._record(conn, actor, "user.passwd", name)

    def list_users(self) -> list[UserInfo]:
        """Every user, by name, with how many tokens and live sessions each has."""
        token_count = (
            sa.select(sa.func.count()).where(tokens.c.user_name == users.c.name).scalar_subquery()
        )
        session_count = (
            sa.select(sa.func.count())
            .where(sessions.c.user_name == users.c.name, sessions.c.expires_at > self._now())
            .scalar_subquery()
        )
        query = sa.select(
            users.c.name,
            users.c.role,
            users.c.created_at,
            users.c.password_changed_at,
            token_count,
            session_count,
        ).order_by(users.c.name)
        with read_transaction(self._engine) as conn:
            rows = conn.execute(query).all()
        return [UserInfo(r[0], Role(r[1]), r[2], r[3], int(r[4]), int(r[5])) for r in rows]

    def count(self) -> int:
        """How many users exist (none: the loopback development mode may apply)."""
        with read_transaction(self._engine) as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one())

    def login(self, name: str, password: str) -> Principal | None:
        """The user if ``password`` is theirs, else ``None`` (unknown names take as long)."""
        with read_transaction(self._engine) as conn:
            row = conn.execute(
                sa.select(users.c.role, users.c.password_hash).where(users.c.name == name)
            ).first()
        if not verify_password(password, row[1] if row else None) or row is None:
            return None
        return Principal(name, Role(row[0]), Credential.SESSION)

    # ------------------------------------------------------------------ tokens
    def issue_token(self, name: str, *, label: str = "", actor: Actor | None = None) -> str:
        """A new API token of ``name``; only its digest is kept, so show it now or never."""
        token = TOKEN_PREFIX + new_secret()
        with write_transaction(self._engine) as conn:
            if self._role_of(conn, name) is None:
                raise NotFound(f"no user {name!r}")
            conn.execute(
                tokens.insert().values(
                    digest=digest_secret(token),
                    user_name=name,
                    label=label[:100],
                    created_at=self._now(),
                )
            )
            self._record(conn, actor, "user.token.create", name, after={"label": label[:100]})
        return token

    def revoke_tokens(self, name: str, *, actor: Actor | None = None) -> int:
        """Delete every token of ``name``; how many there were."""
        with write_transaction(self._engine) as conn:
            count = int(conn.execute(tokens.delete().where(tokens.c.user_name == name)).rowcount)
            if count:
                self._record(conn, actor, "user.token.revoke", name, before={"tokens": count})
            return count

    def by_token(self, token: str) -> Principal | None:
        """Whose ``token`` this is, or ``None``."""
        query = (
            sa.select(users.c.name, users.c.role)
            .join(tokens, tokens.c.user_name == users.c.name)
            .where(tokens.c.digest == digest_secret(token))
        )
        with read_transaction(self._engine) as conn:
            row = conn.execute(query).first()
        return Principal(row[0], Role(row[1]), Credential.TOKEN) if row else None

    # ------------------------------------------------------------------ sessions
    def start_session(self, name: str, *, ttl: timedelta) -> str:
        """A new session of ``name`` lasting ``ttl``; its id (the cookie's value)."""
        session_id = new_secret()
        now = self._now()
        with write_transaction(self._engine) as conn:
            # Expired sessions are cleared as new ones start: no sweeper task needed.
            conn.execute(sessions.delete().where(sessions.c.expires_at <= now))
            conn.execute(
                sessions.insert().values(
                    digest=digest_secret(session_id),
                    user_name=name,
                    created_at=now,
                    expires_at=now + ttl,
                )
            )
        return session_id

    def by_session(self, session_id: str) -> Principal | None:
        """Whose live session ``session_id`` is, or ``None`` (unknown or expired)."""
        query = (
            sa.select(users.c.name, users.c.role)
            .join(sessions, sessions.c.user_name == users.c.name)
            .where(
                sessions.c.digest == digest_secret(session_id),
                sessions.c.expires_at > self._now(),
            )
        )
        with read_transaction(self._engine) as conn:
            row = conn.execute(query).first()
        return Principal(row[0], Role(row[1]), Credential.SESSION) if row else None

    def end_session(self, session_id: str) -> None:
        """Log out: the session is deleted (unknown ids are ignored)."""
        with write_transaction(self._engine) as conn:
            conn.execute(sessions.delete().where(sessions.c.digest == digest_secret(session_id)))

    @staticmethod
    def _role_of(conn: Connection, name: str) -> str | None:
        return conn.execute(sa.select(users.c.role).where(users.c.name == name)).scalar()
