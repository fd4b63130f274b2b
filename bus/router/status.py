"""``/api/balancers``: every service's balancer as this bus instance sees it, for operators
("why is this node out?") and for chaos tests that watch breakers open and close."""

from __future__ import annotations

import dataclasses

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from powerbus.bus.router.balancers import Balancers

__all__ = ["balancer_routes"]


def balancer_routes(balancers: Balancers) -> list[BaseRoute]:
    """``GET /api/balancers[?service=NAME]``: per service, the picker, panic and standby
    state, the service breaker, and per node: in rotation, weight, health checks, ejection,
    breaker.
    """

    async def snapshots(request: Request) -> JSONResponse:
        wanted = request.query_params.get("service")
        found: list[dict[str, object]] = []
        for lane in balancers.lanes():
            if wanted and lane.service != wanted:
                continue
            entry = dataclasses.asdict(lane.balancer.snapshot())
            budget = lane.executor.budget
            entry["retry_budget"] = {"in_flight": budget.in_flight, "refused": budget.refused}
            found.append(entry)
        return JSONResponse({"balancers": found})

    return [Route("/api/balancers", snapshots)]
