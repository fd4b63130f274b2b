"""``/api/audit``: the audit record, newest first, for the dashboard and scripts."""

from __future__ import annotations

import asyncio
import functools
from datetime import datetime, timezone

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from powerbus.bus.access.audit import AuditLog
from powerbus.bus.kernel.config import parse_duration
from powerbus.bus.kernel.errors import ConfigError

__all__ = ["audit_routes"]

_MAX_LIMIT = 1000


def audit_routes(audit: AuditLog) -> list[BaseRoute]:
    """``GET /api/audit[?since=24h][&action=policy][&limit=50]``: entries as
    ``powerbus audit --json`` prints them."""

    async def entries(request: Request) -> JSONResponse:
        query = request.query_params
        try:
            since = (
                datetime.now(timezone.utc) - parse_duration(query["since"], field="since")
                if query.get("since")
                else None
            )
            limit = int(query.get("limit", "50"))
            if not 1 <= limit <= _MAX_LIMIT:
                raise ValueError
        except ConfigError as error:
            return JSONResponse({"error": error.message}, status_code=400)
        except ValueError:
            return JSONResponse({"error": f"limit: give 1..{_MAX_LIMIT}"}, status_code=400)
        read = functools.partial(
            audit.entries, since=since, action=query.get("action", ""), limit=limit
        )
        found = await asyncio.to_thread(read)
        return JSONResponse({"entries": [e.as_json() for e in found]})

    return [Route("/api/audit", entries)]
