"""Password hashes (scrypt) and the random secrets of sessions and API tokens.

A password is hashed with ``hashlib.scrypt`` (memory-hard, salted per user) and stored as
``scrypt$n$r$p$salt$hash`` (base64), so the cost can be raised later without breaking old
hashes. Session ids and tokens are 32 random bytes: too much entropy to guess, so a plain
SHA-256 of them is what the database keeps (a stolen table gives no usable secret), and a
lookup by that digest needs no slow hash per request.

>>> stored = hash_password("correct horse")
>>> stored.startswith("scrypt$16384$8$1$")
True
>>> verify_password("correct horse", stored), verify_password("wrong", stored)
(True, False)
>>> len(digest_secret(new_secret())) == 64
True
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "digest_secret",
    "hash_password",
    "new_secret",
    "verify_password",
]

MIN_PASSWORD_LENGTH = 10
"""Shorter passwords are refused when set (NIST SP 800-63B asks for at least 8)."""

# RFC 7914's interactive parameters: 16 MiB of memory and ~50 ms a hash.
_N, _R, _P = 2**14, 8, 1
_SALT_BYTES = 16
_HASH_BYTES = 32
# Compared against when the user does not exist, so an unknown name costs as long as a
# wrong password (names cannot be told apart by timing).
_DUMMY = f"scrypt${_N}${_R}${_P}$" + "A" * 24 + "$" + "A" * 44


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=2 * 128 * n * r * p,
        dklen=_HASH_BYTES,
    )


def hash_password(password: str) -> str:
    """The stored form of ``password``: scrypt with a fresh random salt."""
    salt = secrets.token_bytes(_SALT_BYTES)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(_scrypt(password, salt, _N, _R, _P))}"


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored``; ``None`` (no such user) is checked against
    a dummy hash first, so it takes as long as a wrong password and is ``False``."""
    try:
        scheme, n, r, p, salt, expected = (stored or _DUMMY).split("$")
        if scheme != "scrypt":
            return False
        actual = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except ValueError:  # a damaged stored hash never matches
        return False
    return stored is not None and hmac.compare_digest(actual, base64.b64decode(expected))


def new_secret() -> str:
    """A fresh session id or token secret: 32 random bytes, URL-safe text."""
    return secrets.token_urlsafe(32)


def digest_secret(secret: str) -> str:
    """What the database keeps of a session id or token: its SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
