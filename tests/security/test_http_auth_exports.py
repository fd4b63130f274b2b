"""The login package's public API is its curated ``__all__`` (issue 13, item 6)."""

from __future__ import annotations

import powerbus.bus.http_auth

PUBLIC = [
    "COOKIE",
    "TOKEN_PREFIX",
    "AuthSettings",
    "Authenticator",
    "Credential",
    "HttpAuthGate",
    "HttpAuthMode",
    "MetricsAuth",
    "Principal",
    "Role",
    "UserInfo",
    "UserStore",
    "actor_of",
    "auth_routes",
]


def test_the_public_api_is_pinned_and_sorted():
    assert powerbus.bus.http_auth.__all__ == PUBLIC
    assert sorted(PUBLIC, key=lambda name: (not name.isupper(), name)) == PUBLIC
    for name in PUBLIC:
        assert getattr(powerbus.bus.http_auth, name) is not None
