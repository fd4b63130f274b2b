"""Logins on the bus's HTTP port: local users, roles, API tokens and sessions.

* :mod:`.passwords` hashes passwords (scrypt) and digests tokens and session ids;
* :mod:`.store` keeps users, tokens and sessions in the bus's database (own migrations);
* :mod:`.gate` is the middleware that admits or refuses each request;
* :mod:`.routes` serves ``/login``, ``/logout``, ``/api/session`` and ``/api/users``.

``create_http_app(..., auth=Authenticator(store), auth_settings=AuthSettings())`` in
``bus/http_api.py`` puts them in front of every route.

>>> from powerbus.bus.kernel.database import create_engine
>>> store = UserStore(create_engine("sqlite://"))
>>> store.migrate()
>>> store.add("li", Role.VIEWER, "ten chars or more")
>>> [(u.name, u.role.value) for u in store.list_users()]
[('li', 'viewer')]
"""

from __future__ import annotations

from powerbus.bus.http_auth.authenticator import Authenticator
from powerbus.bus.http_auth.gate import COOKIE, HttpAuthGate, actor_of
from powerbus.bus.http_auth.roles import Role
from powerbus.bus.http_auth.routes import auth_routes
from powerbus.bus.http_auth.settings import AuthSettings, HttpAuthMode, MetricsAuth
from powerbus.bus.http_auth.store import TOKEN_PREFIX, Credential, Principal, UserInfo, UserStore

__all__ = [
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
