"""The bus's HTTP face: liveness and a JSON view of the registry under ``/api``.

Monitoring adds its own routes (the dashboard, ``/metrics``, ``/api/traffic`` and the
rest) with ``routes=``; the registry's stay here so the bus serves them without it.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timezone

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from powerbus.bus.access.audit import AuditLog
from powerbus.bus.http_auth import (
    Authenticator,
    AuthSettings,
    HttpAuthGate,
    actor_of,
    auth_routes,
)
from powerbus.bus.kernel.errors import InvalidArgument, NotFound, PowerbusError
from powerbus.bus.registry import Directory, NodeRecord

__all__ = ["ACTION_HEADER", "Admin", "SameOriginGuard", "create_http_app", "node_json"]

Admin = Callable[..., Awaitable[object]]
ListNodes = Callable[..., Awaitable[list[NodeRecord]]]
"""``Registry`` nodes read from the database: heartbeats and load as of now (the directory
is refreshed only by changes, and a heartbeat is none)."""
"""``Registry.admin``: an operator's action on nodes."""

_DRAIN_MAX_S = 300.0

ACTION_HEADER = "x-powerbus-action"
"""Every POST must carry it: a custom header makes a browser ask first (CORS preflight,
which the bus never grants), so another site's page cannot post a form to the bus."""

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SameOriginGuard:
    """Refuses (403) a state-changing request without :data:`ACTION_HEADER`, whose
    ``Origin`` is not the bus's own host, or that the browser says is cross-site
    (``Sec-Fetch-Site``): the CSRF guard of every operator action and of logging in.
    Requests with an API token are exempt (the gate marks them): a browser never sends
    one by itself."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] not in _SAFE_METHODS
            and not scope.get("powerbus.csrf_exempt")
        ):
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            origin = headers.get("origin", "")
            host = headers.get("host", "")
            problem = ""
            if not headers.get(ACTION_HEADER):
                problem = f"operator actions need the {ACTION_HEADER} header (CSRF guard)"
            elif origin and origin.split("://", 1)[-1] != host:
                problem = f"origin {origin} is not this bus ({host}): refused (CSRF guard)"
            elif headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
                problem = "a request from another site: refused (CSRF guard)"
            if problem:
                await JSONResponse({"error": problem}, status_code=403)(scope, receive, send)
                return
        await self._app(scope, receive, send)


def node_json(node: NodeRecord, *, now: datetime) -> dict[str, object]:
    """A node as ``/api/nodes`` and ``powerbus nodes --json`` show it."""
    return {
        "node_id": node.node_id,
        "kind": node.kind,
        "address": node.address,
        "services": list(node.services),
        # The dashboard's words: up, draining, down (lease lapsed) or left (deregistered).
        "health": "left" if node.left else node.health.value,
        "weight": node.weight,
        "zone": node.zone,
        "priority": node.priority.value,
        "dependencies": [d.service for d in node.dependencies],
        "lease_age_s": round((now - node.last_heartbeat_at).total_seconds(), 3),
        "registered_at": node.registered_at.isoformat(),
        "last_heartbeat_at": node.last_heartbeat_at.isoformat(),
        "lease_expires_at": node.lease_expires_at.isoformat(),
        "lease_ttl_s": round((node.lease_expires_at - node.last_heartbeat_at).total_seconds(), 3),
        "down_since": node.down_since.isoformat() if node.down_since else None,
        "version": node.metadata.get("version", ""),
        "metadata": dict(node.metadata),
        "load": {
            "in_flight": node.load.in_flight,
            "cpu": node.load.cpu,
            "requests_total": node.load.requests_total,
            "errors_total": node.load.errors_total,
        },
    }


def create_http_app(
    directory: Directory,
    *,
    routes: Sequence[BaseRoute] = (),
    problems: Callable[[], Sequence[str]] = tuple,
    admin: Admin | None = None,
    in_flight: Callable[[str], int] = lambda _node: 0,
    list_nodes: ListNodes | None = None,
    auth: Authenticator | None = None,
    auth_settings: AuthSettings | None = None,
    audit: AuditLog | None = None,
) -> Starlette:
    """The Starlette app served on the bus's HTTP port: ``/healthz``, ``/api/nodes``,
    ``/api/services``, then ``routes``. ``/healthz`` answers 503 with one line per
    ``problems()`` (the registry database deleted, damaged or unreachable), else "ok".

    With ``auth`` every request passes the login gate first (``bus/http_auth``), and
    ``/login``, ``/logout``, ``/api/session`` and ``/api/users`` are served too. With
    ``audit`` every operator action that changed something is recorded there, with who
    asked (``http/NAME``) and from where."""

    async def healthz(_request: Request) -> PlainTextResponse:
        found = problems()
        if found:
            return PlainTextResponse("".join(f"{p}\n" for p in found), status_code=503)
        return PlainTextResponse("ok\n")

    async def nodes(request: Request) -> JSONResponse:
        include_down = request.query_params.get("include_down", "") in {"1", "true", "yes"}
        now = datetime.now(timezone.utc)
        service = request.query_params.get("service") or None
        if list_nodes is not None:
            try:
                found = await list_nodes(service=service, include_down=include_down)
            except PowerbusError as exc:
                return JSONResponse({"error": exc.message}, status_code=503)
        else:
            found = directory.nodes(service=service, include_down=include_down)
        return JSONResponse({"nodes": [node_json(n, now=now) for n in found]})

    async def services(_request: Request) -> JSONResponse:
        result = []
        for name in directory.services():
            entry = directory.service(name)
            nodes = entry.nodes if entry else ()
            result.append(
                {
                    "service": name,
                    "nodes": len(nodes),
                    "healthy": len(entry.healthy) if entry else 0,
                }
            )
        return JSONResponse({"services": result})

    async def act(request: Request) -> JSONResponse:
        """``POST /api/nodes/{id}/{disable|enable|drain|deregister|weight}``, ``POST
        /api/nodes/purge``: operator actions (see ``bus/registry/_admin.py``)."""
        if admin is None:
            return JSONResponse({"error": "operator actions are off"}, status_code=404)
        node_id = request.path_params.get("node_id", "")
        action = request.path_params.get("action", "purge")
        try:
            done = await _act(admin, in_flight, action, node_id, request)
        except NotFound as exc:
            return JSONResponse({"error": exc.message}, status_code=404)
        except InvalidArgument as exc:
            return JSONResponse({"error": exc.message}, status_code=400)
        except PowerbusError as exc:
            return JSONResponse({"error": exc.message}, status_code=503)
        if audit is not None and (done.get("changed") or done.get("purged")):
            # Recorded after the registry's own transaction, as policy changes are.
            record = functools.partial(
                audit.record,
                actor_of(request.scope),
                f"node.{action}",
                f"node/{node_id}" if node_id else "nodes",
                after={k: v for k, v in done.items() if k not in ("action", "node_id")},
            )
            await asyncio.to_thread(record)
        return JSONResponse(done)

    settings = auth_settings or AuthSettings()
    # Outermost first: who is asking, then (for a browser's session) the CSRF guard.
    gate = [Middleware(HttpAuthGate, auth=auth, settings=settings)] if auth is not None else []
    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/api/nodes", nodes),
            Route("/api/nodes/purge", act, methods=["POST"]),
            Route("/api/nodes/{node_id}/{action}", act, methods=["POST"]),
            Route("/api/services", services),
            *(auth_routes(auth, settings) if auth is not None else ()),
            *routes,
        ],
        middleware=[*gate, Middleware(SameOriginGuard)],
    )


async def _act(
    admin: Admin, in_flight: Callable[[str], int], action: str, node_id: str, request: Request
) -> dict[str, object]:
    query = request.query_params
    if action == "purge":
        return {"action": action, "purged": await admin("purge")}
    if action == "weight":
        try:
            weight = int(query.get("value", ""))
        except ValueError:
            raise InvalidArgument("value", "give the weight as ?value=N") from None
        changed = await admin("weight", node_id, weight=weight)
        return {"action": action, "node_id": node_id, "changed": changed}
    if action == "drain":
        # Out of rotation, then wait (bounded) for the calls it has to finish.
        changed = await admin("disable", node_id)
        try:
            grace = min(float(query.get("grace", "30")), _DRAIN_MAX_S)
        except ValueError:
            raise InvalidArgument("grace", "give seconds, e.g. ?grace=30") from None
        deadline = time.monotonic() + grace
        # Polled: the recorder counts calls in flight on the hot path and signals nothing.
        while in_flight(node_id) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        left = in_flight(node_id)
        return {"action": action, "node_id": node_id, "changed": changed, "in_flight": left}
    if action in ("disable", "enable", "deregister"):
        return {"action": action, "node_id": node_id, "changed": await admin(action, node_id)}
    raise InvalidArgument(
        "action", f"unknown action {action!r}; one of disable, enable, drain, weight, deregister"
    )
