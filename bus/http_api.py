"""The bus's HTTP face: liveness and a JSON view of the registry under ``/api``.

Monitoring adds its own routes (the dashboard, ``/metrics``, ``/api/traffic`` and the
rest) with ``routes=``; the registry's stay here so the bus serves them without it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timezone

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import BaseRoute, Route

from powerbus.bus.kernel.errors import InvalidArgument, NotFound, PowerbusError
from powerbus.bus.registry import Directory, NodeRecord

__all__ = ["Admin", "create_http_app", "node_json"]

Admin = Callable[..., Awaitable[object]]
"""``Registry.admin``: an operator's action on nodes."""

_DRAIN_MAX_S = 300.0


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
    }


def create_http_app(
    directory: Directory,
    *,
    routes: Sequence[BaseRoute] = (),
    problems: Callable[[], Sequence[str]] = tuple,
    admin: Admin | None = None,
    in_flight: Callable[[str], int] = lambda _node: 0,
) -> Starlette:
    """The Starlette app served on the bus's HTTP port: ``/healthz``, ``/api/nodes``,
    ``/api/services``, then ``routes``. ``/healthz`` answers 503 with one line per
    ``problems()`` (the registry database deleted, damaged or unreachable), else "ok"."""

    async def healthz(_request: Request) -> PlainTextResponse:
        found = problems()
        if found:
            return PlainTextResponse("".join(f"{p}\n" for p in found), status_code=503)
        return PlainTextResponse("ok\n")

    async def nodes(request: Request) -> JSONResponse:
        include_down = request.query_params.get("include_down", "") in {"1", "true", "yes"}
        now = datetime.now(timezone.utc)
        found = directory.nodes(
            service=request.query_params.get("service") or None, include_down=include_down
        )
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
            return JSONResponse(await _act(admin, in_flight, action, node_id, request))
        except NotFound as exc:
            return JSONResponse({"error": exc.message}, status_code=404)
        except InvalidArgument as exc:
            return JSONResponse({"error": exc.message}, status_code=400)
        except PowerbusError as exc:
            return JSONResponse({"error": exc.message}, status_code=503)

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/api/nodes", nodes),
            Route("/api/nodes/purge", act, methods=["POST"]),
            Route("/api/nodes/{node_id}/{action}", act, methods=["POST"]),
            Route("/api/services", services),
            *routes,
        ]
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
