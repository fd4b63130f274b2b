"""Roles of HTTP users, and the role each request needs.

=============================================  ==========
request                                        needs
=============================================  ==========
``GET``/``HEAD`` of the dashboard and ``/api``  viewer
any other method on ``/api`` (an action)        operator
anything under ``/api/users``                   admin
``/login``, ``/logout``, ``/static/``           nobody
``/metrics``, ``/healthz``                      nobody, or a token (``metrics_auth``)
=============================================  ==========

A path not in this table needs a viewer: what is not named is not open.

>>> required_role("GET", "/api/overview"), required_role("POST", "/api/alerts/ack")
(<Role.VIEWER: 'viewer'>, <Role.OPERATOR: 'operator'>)
>>> required_role("GET", "/api/users"), required_role("GET", "/static/app.css")
(<Role.ADMIN: 'admin'>, None)
>>> Role.OPERATOR.allows(Role.VIEWER), Role.VIEWER.allows(Role.OPERATOR)
(True, False)
"""

from __future__ import annotations

import enum

__all__ = ["OPEN_PATHS", "PROBE_PATHS", "Role", "action_of", "required_role"]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

OPEN_PATHS = ("/login", "/logout", "/static/")
"""Served to anyone: the login page and what it loads, and logging out."""

PROBE_PATHS = ("/metrics", "/healthz")
"""Scraped and probed by machines: open unless ``metrics_auth = "token"``."""


class Role(str, enum.Enum):
    """What a user may do; each role may do everything the roles before it may."""

    VIEWER = "viewer"
    """Reads the dashboard and every ``GET /api``."""
    OPERATOR = "operator"
    """And acts: drains and weights nodes, acknowledges and silences alerts."""
    ADMIN = "admin"
    """And manages users (``/api/users``)."""

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        """Whether a user of this role may do what ``needed`` may."""
        return self.rank >= needed.rank


def _under(path: str, prefix: str) -> bool:
    return path == prefix.rstrip("/") or path.startswith(prefix.rstrip("/") + "/")


def required_role(method: str, path: str) -> Role | None:
    """The role ``method path`` needs; ``None`` for the open paths (login, static files).
    ``/metrics`` and ``/healthz`` come back as :attr:`Role.VIEWER`: whether they need a
    login at all is the ``metrics_auth`` setting's to say (see :data:`PROBE_PATHS`)."""
    if any(_under(path, prefix) for prefix in OPEN_PATHS):
        return None
    if _under(path, "/api/users"):
        return Role.ADMIN
    if method.upper() not in _SAFE_METHODS:
        return Role.OPERATOR
    return Role.VIEWER


def action_of(method: str, path: str) -> str:
    """How a refusal names what was asked: ``POST /api/alerts/ack``."""
    return f"{method.upper()} {path}"
