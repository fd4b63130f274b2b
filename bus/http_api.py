"""The bus's HTTP face: liveness and a JSON view of the registry under ``/api``.

Monitoring adds its own routes (the dashboard, ``/metrics``, ``/api/traffic`` and the
rest) with ``routes=``; the registry's stay here so the bus serves them without it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import BaseRoute, Route

from powerbus.bus.registry import Directory, NodeRecord

__all__ = ["create_http_app", "node_json"]


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

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/api/nodes", nodes),
            Route("/api/services", services),
            *routes,
        ]
    )
