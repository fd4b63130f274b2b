"""The HTTP port's authentication middleware: who sent each request, and may they.

For every request the gate works out the role it needs (:func:`.roles.required_role`),
then who sent it: an ``Authorization: Bearer`` API token, else the login cookie, else
(``http_auth = "auto"`` before any user exists) a caller on this machine. Refusals:

* nobody: ``401`` with a JSON error for ``/api``, ``/metrics`` and ``/healthz``, a
  redirect to ``/login`` for the dashboard's pages;
* a role too low: ``403`` naming the user, the role, the action and the role it needs.

The principal goes into the ASGI scope (``powerbus.principal``; ``powerbus.user`` is its
name, for routes outside ``bus/``). A token request is marked exempt from the CSRF
guard that follows (``powerbus.csrf_exempt``): browsers never send a bearer token on
their own, so another site cannot make them.
"""

from __future__ import annotations

import logging
import urllib.parse

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from powerbus.bus.access.audit import Actor
from powerbus.bus.http_auth.authenticator import Authenticator
from powerbus.bus.http_auth.roles import PROBE_PATHS, Role, action_of, required_role
from powerbus.bus.http_auth.settings import AuthSettings, HttpAuthMode, MetricsAuth
from powerbus.bus.http_auth.store import Credential, Principal
from powerbus.bus.kernel.tls import is_loopback

__all__ = ["COOKIE", "PRINCIPAL", "HttpAuthGate", "actor_of", "local_path"]

log = logging.getLogger(__name__)

COOKIE = "powerbus_session"
"""The login cookie: a random session id, kept server side as its digest."""
PRINCIPAL = "powerbus.principal"
"""Scope key of the :class:`~.store.Principal` of an admitted request."""

_DEV = Principal("", Role.OPERATOR, Credential.LOOPBACK)
# Loopback before any user exists may read and act, as before logins existed; managing
# users over HTTP takes a real admin (the first one is made with `powerbus users add`).


def actor_of(scope: Scope) -> Actor:
    """Who an admitted request is, for the audit record: ``http/NAME`` (logged in or by
    token), ``anonymous`` (the loopback development mode), and the peer's address."""
    principal: Principal | None = scope.get(PRINCIPAL)
    name = principal.name if principal is not None else ""
    client = scope.get("client")
    peer = f"{client[0]}:{client[1]}" if client else "unknown"
    return Actor(identity=f"http/{name}" if name else "anonymous", peer=peer)


def local_path(target: str, default: str = "/") -> str:
    """``target`` if it is a path on this server, else ``default``: a ``next=`` after login
    must not send the browser to another site (an open redirect)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


class HttpAuthGate:
    """ASGI middleware admitting only requests whose sender's role allows them."""

    def __init__(self, app: ASGIApp, *, auth: Authenticator, settings: AuthSettings) -> None:
        self._app = app
        self._auth = auth
        self._settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            # The bus serves no WebSocket; one must not slip past the gate unchecked.
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        method, path = scope["method"], scope["path"]
        needed = required_role(method, path)
        probe = path in PROBE_PATHS
        if needed is None or (probe and self._settings.metrics is MetricsAuth.OPEN):
            await self._app(scope, receive, send)
            return
        principal, problem = await self._identify(conn, tokens_only=probe)
        if principal is None:
            response = self._unauthenticated(conn, problem, page=not path.startswith("/api"))
        elif not principal.role.allows(needed):
            response = self._forbidden(conn, principal, needed)
        else:
            scope[PRINCIPAL] = principal
            scope["powerbus.user"] = principal.name
            if principal.credential is Credential.TOKEN:
                scope["powerbus.csrf_exempt"] = True
            await self._app(scope, receive, send)
            return
        await response(scope, receive, send)

    async def _identify(
        self, conn: HTTPConnection, *, tokens_only: bool
    ) -> tuple[Principal | None, str]:
        """The sender, or ``None`` and why not."""
        scheme, _, token = conn.headers.get("authorization", "").partition(" ")
        if scheme:
            if scheme.lower() != "bearer" or not token.strip():
                return None, "Authorization: give 'Bearer <token>' (powerbus users token)"
            found = await self._auth.by_token(token.strip())
            return found, "" if found else "that API token is not valid (revoked or mistyped)"
        if tokens_only:
            return None, "this path needs an API token: Authorization: Bearer <token>"
        session = conn.cookies.get(COOKIE, "")
        if session:
            found = await self._auth.by_session(session)
            if found is not None:
                return found, ""
        if (
            self._settings.mode is HttpAuthMode.AUTO
            and conn.client is not None
            and is_loopback(conn.client.host)
            and not await self._auth.anyone()
        ):
            return _DEV, ""
        return None, "the session expired; log in again" if session else "log in first"

    @staticmethod
    def _forbidden(conn: HTTPConnection, principal: Principal, needed: Role) -> Response:
        method, path = conn.scope["method"], conn.scope["path"]
        peer = conn.client.host if conn.client else "?"
        log.warning(
            "refused %s %s to %s (%s) from %s",
            method,
            path,
            principal.name,
            principal.role.value,
            peer,
        )
        return JSONResponse(
            {
                "error": f"user {principal.name!r} ({principal.role.value}) may not "
                f"{action_of(method, path)}: that needs {needed.value}",
                "role": principal.role.value,
                "needs": needed.value,
            },
            status_code=403,
        )

    @staticmethod
    def _unauthenticated(conn: HTTPConnection, problem: str, *, page: bool) -> Response:
        if page and conn.scope["method"] in ("GET", "HEAD") and conn.url.path not in PROBE_PATHS:
            target = conn.url.path + (f"?{conn.url.query}" if conn.url.query else "")
            query = urllib.parse.urlencode({"next": target})
            return RedirectResponse(f"/login?{query}", status_code=303)
        return JSONResponse(
            {"error": f"authentication required: {problem}", "login": "/login"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="powerbus"'},
        )
