"""Bearer tokens: a node or script proves its identity without a certificate.

A token reads ``pbt_<id>_<secret>``: the id finds the stored row, the secret (256 random
bits) is checked against its SHA-256 in constant time. The secret is shown once, when
the token is created, and never stored. A token proves one identity (``node/echo-1``,
``client/ops``) until it is revoked.

>>> token = new_token()
>>> parsed = parse_token(token.text)
>>> parsed.token_id == token.token_id and parsed.matches(token.secret_sha256)
True
>>> parse_token("Bearer nonsense") is None
True
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from datetime import datetime

import sqlalchemy as sa

from powerbus.bus.access.audit import Actor, AuditedTable
from powerbus.bus.access.tables import tokens
from powerbus.bus.kernel.database import read_transaction, write_transaction
from powerbus.bus.kernel.errors import InvalidArgument, NotFound
from powerbus.bus.kernel.metadata import BUS_TOKEN_PREFIX

__all__ = ["IssuedToken", "StoredToken", "Tokens", "check_identity", "new_token", "parse_token"]

_TOKEN = re.compile(rf"^{BUS_TOKEN_PREFIX}([0-9a-f]{{16}})_([A-Za-z0-9_-]{{43}})$")
_IDENTITY = re.compile(r"^[a-z][a-z0-9-]*/[A-Za-z0-9_.@:-]{1,150}$")


def check_identity(identity: str) -> str:
    """``identity`` if it reads ``kind/name`` (``node/echo-1``, ``client/ops``);
    :class:`InvalidArgument` naming it otherwise."""
    if not _IDENTITY.match(identity):
        raise InvalidArgument(
            "identity",
            f"{identity!r} is not an identity: kind/name, such as node/echo-1 or client/ops",
        )
    return identity


@dataclasses.dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new token: ``text`` goes to its holder once; the rest is stored."""

    token_id: str
    text: str
    secret_sha256: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class _Presented:
    token_id: str
    secret: str

    def matches(self, secret_sha256: bytes) -> bool:
        digest = hashlib.sha256(self.secret.encode()).digest()
        return hmac.compare_digest(digest, secret_sha256)


def new_token() -> IssuedToken:
    """A fresh random token."""
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return IssuedToken(
        token_id=token_id,
        text=f"{BUS_TOKEN_PREFIX}{token_id}_{secret}",
        secret_sha256=hashlib.sha256(secret.encode()).digest(),
    )


def parse_token(text: str) -> _Presented | None:
    """The id and secret of a presented token; ``None`` if it is not one."""
    found = _TOKEN.match(text.strip())
    return _Presented(found.group(1), found.group(2)) if found else None


@dataclasses.dataclass(frozen=True, slots=True)
class StoredToken:
    """A token as listed: never its secret."""

    token_id: str
    identity: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    secret_sha256: bytes = dataclasses.field(repr=False)

    @property
    def live(self) -> bool:
        return self.revoked_at is None


class Tokens(AuditedTable):
    """Creates, lists and revokes tokens; each change is audited in its transaction."""

    def create(self, identity: str, actor: Actor) -> IssuedToken:
        """A new token proving ``identity``."""
        check_identity(identity)
        issued = new_token()
        with write_transaction(self.engine) as conn:
            conn.execute(
                sa.insert(tokens).values(
                    token_id=issued.token_id,
                    identity=identity,
                    secret_sha256=issued.secret_sha256,
                    created_at=self._clock(),
                    created_by=actor.identity,
                )
            )
            after = {"token_id": issued.token_id, "identity": identity}
            self._audit.add(conn, actor, "token.create", identity, after=after)
        return issued

    def revoke(self, token_id: str, actor: Actor) -> StoredToken:
        """Revoke a token (it stops working within a sweep on every bus)."""
        with write_transaction(self.engine) as conn:
            row = conn.execute(sa.select(tokens).where(tokens.c.token_id == token_id)).first()
            if row is None:
                raise NotFound(f"token_id: no token {token_id!r}")
            if row.revoked_at is not None:
                raise InvalidArgument("token_id", f"{token_id} was revoked at {row.revoked_at}")
            now = self._clock()
            conn.execute(
                sa.update(tokens).where(tokens.c.token_id == token_id).values(revoked_at=now)
            )
            self._audit.add(
                conn,
                actor,
                "token.revoke",
                row.identity,
                before={"token_id": token_id, "live": True},
                after={"token_id": token_id, "live": False},
            )
        return dataclasses.replace(_stored(row), revoked_at=now)

    def listed(self, *, include_revoked: bool = False) -> list[StoredToken]:
        """Tokens by identity, then creation."""
        query = sa.select(tokens).order_by(tokens.c.identity, tokens.c.created_at)
        if not include_revoked:
            query = query.where(tokens.c.revoked_at.is_(None))
        with read_transaction(self.engine) as conn:
            return [_stored(r) for r in conn.execute(query)]

    def live_index(self) -> Mapping[str, StoredToken]:
        """Live tokens by id: what the bus checks presented tokens against."""
        return {t.token_id: t for t in self.listed()}


def _stored(row: sa.Row[tuple[object, ...]]) -> StoredToken:
    return StoredToken(
        token_id=row.token_id,
        identity=row.identity,
        created_at=row.created_at,
        created_by=row.created_by,
        revoked_at=row.revoked_at,
        secret_sha256=bytes(row.secret_sha256),
    )
