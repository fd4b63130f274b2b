"""The HTTP routes of logging in and out, and of managing users over ``/api/users``.

===============================  =======================================================
``GET /login``                   the login page (``monitoring/static/login.html``)
``POST /login``                  ``{"name", "password", "next"}``: sets the session cookie
``POST /logout``                 ends the session, clears the cookie
``GET /api/session``             who is logged in: ``{"user", "role", "credential"}``
``GET /api/users``               the users (admin)
``POST /api/users``              ``{"name", "role", "password"}``: adds one (admin)
``DELETE /api/users/{name}``     removes one with its tokens and sessions (admin)
===============================  =======================================================

Login and logout are POSTs from the page's script with the ``X-Powerbus-Action`` header,
so the CSRF guard covers them too (no other site can log a browser in or out).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from powerbus.bus.http_auth.authenticator import Authenticator
from powerbus.bus.http_auth.gate import COOKIE, PRINCIPAL, actor_of, local_path
from powerbus.bus.http_auth.roles import Role
from powerbus.bus.http_auth.settings import AuthSettings
from powerbus.bus.http_auth.store import Principal
from powerbus.bus.kernel.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from powerbus.bus.kernel.peers import PeerRateLimit
from powerbus.monitoring.api import STATIC

__all__ = ["auth_routes"]

log = logging.getLogger(__name__)

_MAX_FORM_BYTES = 8192


async def _json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, read no further than ``_MAX_FORM_BYTES``."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            raise InvalidArgument("body", f"larger than {_MAX_FORM_BYTES} bytes")
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise InvalidArgument("body", 'not JSON; send {"name": ..., "password": ...}') from None
    if not isinstance(data, dict):
        raise InvalidArgument("body", "expected a JSON object")
    return data


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise InvalidArgument(key, "expected a string")
    return value


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def auth_routes(auth: Authenticator, settings: AuthSettings) -> list[BaseRoute]:
    """Every route above, bound to ``auth``; login attempts limited per peer host."""
    attempts = PeerRateLimit("login attempts", rate=settings.login_rate, burst=settings.login_burst)
    ttl_s = int(settings.session_ttl.total_seconds())
    retry_after = str(max(1, round(1 / settings.login_rate)))  # seconds until one more try

    async def login_page(_request: Request) -> Response:
        return FileResponse(STATIC / "login.html", headers={"Cache-Control": "no-cache"})

    async def login(request: Request) -> Response:
        peer = request.client.host if request.client else "?"
        try:
            attempts.take(peer)
            data = await _json_body(request)
            name, password = _text(data, "name"), _text(data, "password")
            target = local_path(_text(data, "next") or "/")
        except ResourceExhausted as exc:
            return _error(429, exc.message, {"Retry-After": retry_after})
        except InvalidArgument as exc:
            return _error(400, exc.message)
        principal = await auth.login(name, password) if name and password else None
        if principal is None:
            log.warning("failed HTTP login as %r from %s", name[:64], peer)
            return _error(401, "wrong user name or password")
        session = await auth.start_session(principal.name, ttl=settings.session_ttl)
        log.info("%s logged in over HTTP from %s", principal.name, peer)
        response = JSONResponse(
            {"user": principal.name, "role": principal.role.value, "next": target}
        )
        response.set_cookie(
            COOKIE,
            session,
            max_age=ttl_s,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(request: Request) -> Response:
        session = request.cookies.get(COOKIE, "")
        if session:
            await auth.end_session(session)
        response = JSONResponse({"logged_out": bool(session)})
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    async def whoami(request: Request) -> Response:
        principal: Principal = request.scope[PRINCIPAL]
        return JSONResponse(
            {
                "user": principal.name,
                "role": principal.role.value,
                "credential": principal.credential.value,
            }
        )

    async def list_users(_request: Request) -> Response:
        found = await asyncio.to_thread(auth.store.list_users)
        return JSONResponse(
            {
                "users": [
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
            }
        )

    async def add_user(request: Request) -> Response:
        try:
            data = await _json_body(request)
            role_text = _text(data, "role")
            try:
                role = Role(role_text)
            except ValueError:
                raise InvalidArgument(
                    "role", f"one of viewer, operator, admin, got {role_text!r}"
                ) from None
            name = _text(data, "name")
            password = _text(data, "password")
            actor = actor_of(request.scope)
            await asyncio.to_thread(
                functools.partial(auth.store.add, name, role, password, actor=actor)
            )
        except InvalidArgument as exc:
            return _error(400, exc.message)
        except AlreadyExists as exc:
            return _error(409, exc.message)
        auth.forget_users()
        log.info("%s added HTTP user %s (%s)", request.scope[PRINCIPAL].name, name, role.value)
        return JSONResponse({"added": name, "role": role.value}, status_code=201)

    async def remove_user(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            remove = functools.partial(auth.store.remove, name, actor=actor_of(request.scope))
            await asyncio.to_thread(remove)
        except NotFound as exc:
            return _error(404, exc.message)
        auth.forget_users()
        log.info("%s removed HTTP user %s", request.scope[PRINCIPAL].name, name)
        return JSONResponse({"removed": name})

    return [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/api/session", whoami),
        Route("/api/users", list_users, methods=["GET"]),
        Route("/api/users", add_user, methods=["POST"]),
        Route("/api/users/{name}", remove_user, methods=["DELETE"]),
    ]
