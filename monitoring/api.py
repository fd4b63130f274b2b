"""Monitoring's HTTP routes on the bus's HTTP port: the dashboard, ``/metrics``, ``/api``.

================================  ==========================================================
``/``                             the dashboard (static files served from the package)
``/metrics``                      Prometheus text format
``/api/overview``                 services and nodes with health and live traffic, alerts
``/api/stream``                   the overview once a second, as Server-Sent Events
``/api/traffic``                  history: ``?service=&node=&caller=&since=&until=&step=&by=``
``/api/breakdown``                live and total traffic of ``?service=`` or ``?node=`` by
                                  method, caller, node, service, code and origin
``/api/topology``                 the node-relationship graph; ``?format=dot`` for Graphviz
``/api/impact``                   ``?node=ID``: what breaks if that node goes down
``/api/alerts``                   active and recent alerts, and the rules
``/api/metering/quality``         meter data quality per gateway over ``?window=`` (default:
                                  the ``gateway_quality`` rule's window, else 1 h)
================================  ==========================================================

>>> parse_since("15m", now=1000.0), parse_since("100", now=1000.0), parse_step("1m")
(100.0, 100.0, 60)
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from powerbus.bus.kernel.config import parse_duration
from powerbus.bus.kernel.errors import ConfigError, InvalidArgument, NotFound
from powerbus.monitoring.history import GROUPS

if TYPE_CHECKING:
    from powerbus.monitoring.monitor import Monitoring

__all__ = ["STATIC", "monitoring_routes", "parse_since", "parse_step"]

STATIC = Path(__file__).resolve().parent / "static"
_PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
_NICE_STEPS = (10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 86400)
_POINTS = 120


class BadQuery(ValueError):
    """A query parameter that cannot be understood (answered 400)."""


def parse_since(text: str, *, now: float) -> float:
    """Epoch seconds from ``1700000000``, an ISO time, or a duration back from now (``15m``,
    ``6h``, ``7d``)."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if value < 0:
            raise BadQuery("since: must not be negative")
        return value
    try:
        return float(datetime.fromisoformat(text).timestamp())
    except ValueError:
        pass
    back = text.lstrip("-")
    try:
        if back.endswith("d") and back[:-1].replace(".", "", 1).isdigit():
            return now - float(back[:-1]) * 86400
        return now - parse_duration(back, field="since").total_seconds()
    except ConfigError:
        raise BadQuery(
            f"since: expected epoch seconds, an ISO time or a duration like 15m, got {text!r}"
        ) from None


def parse_step(text: str) -> int:
    """Seconds per point from ``10s``, ``1m``, ``1h`` or a number of seconds (at least 10)."""
    try:
        seconds = parse_duration(text, field="step").total_seconds()
    except ConfigError as error:
        raise BadQuery(error.message) from None
    if seconds < 10:
        raise BadQuery("step: the finest rollup is 10s")
    return int(math.ceil(seconds / 10) * 10)


def auto_step(seconds: float) -> int:
    """A round step that gives about 120 points over ``seconds``."""
    wanted = seconds / _POINTS
    return next((s for s in _NICE_STEPS if s >= wanted), _NICE_STEPS[-1])


def monitoring_routes(monitoring: Monitoring) -> list[BaseRoute]:
    """Every route monitoring serves, bound to ``monitoring``."""

    async def index(_request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def metrics(_request: Request) -> Response:
        return Response(monitoring.scrape(), media_type=_PROMETHEUS_TEXT)

    async def overview(_request: Request) -> Response:
        return _json(monitoring.overview())

    async def stream(_request: Request) -> Response:
        return StreamingResponse(
            monitoring.broadcaster.stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def traffic(request: Request) -> Response:
        q = request.query_params
        now = monitoring.now()
        try:
            since = parse_since(q.get("since", "1h"), now=now)
            until = parse_since(q["until"], now=now) if q.get("until") else now
            if until <= since:
                raise BadQuery("until: must be after since")
            step = parse_step(q["step"]) if q.get("step") else auto_step(until - since)
            by = q.get("by", "")
            if by and by not in GROUPS:
                raise BadQuery(f"by: one of {', '.join(GROUPS)}, got {by!r}")
            points = await monitoring.history(
                since=since,
                until=until,
                step=step,
                service=q.get("service", ""),
                node=q.get("node", ""),
                caller=q.get("caller", ""),
                by=by,
            )
        except (BadQuery, ValueError) as error:
            return _json({"error": str(error)}, status=400)
        return _json(
            {
                "service": q.get("service", ""),
                "node": q.get("node", ""),
                "caller": q.get("caller", ""),
                "since": since,
                "until": until,
                "step": step,
                "by": by,
                "points": points,
            }
        )

    async def breakdown(request: Request) -> Response:
        q = request.query_params
        return _json(monitoring.breakdown(service=q.get("service", ""), node=q.get("node", "")))

    async def topology(request: Request) -> Response:
        graph = monitoring.topology()
        if request.query_params.get("format", "json") == "dot":
            return PlainTextResponse(graph.to_dot(), media_type="text/vnd.graphviz")
        return _json(graph.as_json())

    async def impact(request: Request) -> Response:
        node = request.query_params.get("node", "")
        if not node:
            return _json({"error": "node: which node? e.g. /api/impact?node=echo-1"}, status=400)
        result = monitoring.impact(node)
        if not result.known:
            return _json({**result.as_json(), "error": f"no node {node!r} is known"}, status=404)
        return _json(result.as_json())

    async def quality(request: Request) -> Response:
        raw = request.query_params.get("window", "")
        try:
            window = parse_duration(raw, field="window").total_seconds() if raw else None
        except ConfigError as exc:
            return _json({"error": exc.message}, status=400)
        if window is not None and window <= 0:
            return _json({"error": "window: must be positive, e.g. 15m"}, status=400)
        return _json(monitoring.quality_json(window))

    async def alerts(_request: Request) -> Response:
        return _json(monitoring.alerts_json())

    async def alert_action(request: Request) -> Response:
        """``POST /api/alerts/{ack,silence,unsilence}?rule=&subject=&by=&for=&comment=&id=``."""
        q = request.query_params
        action = request.path_params["action"]
        # The logged-in user's name (set by the bus's login gate), not a self-asserted ?by=;
        # ?by= is kept for the loopback development mode, where nobody is logged in.
        by = str(request.scope.get("powerbus.user") or q.get("by", ""))
        try:
            if action == "ack":
                active = {(a.rule, a.subject) for a in monitoring.alerts.active()}
                key = (q.get("rule", ""), q.get("subject", ""))
                if key not in active:
                    raise NotFound(f"no active alert {key[0]!r} about {key[1]!r}")
                monitoring.silences.acknowledge(*key, by=by, comment=q.get("comment", ""))
                return _json({"acknowledged": {"rule": key[0], "subject": key[1]}})
            if action == "silence":
                seconds = parse_duration(q.get("for", "1h"), field="for").total_seconds()
                silence = monitoring.silences.add(
                    rule=q.get("rule", ""),
                    subject=q.get("subject", ""),
                    seconds=seconds,
                    by=by,
                    comment=q.get("comment", ""),
                )
                return _json({"silence": silence.id})
            if action == "unsilence":
                try:
                    silence_id = int(q.get("id", ""))
                except ValueError:
                    raise InvalidArgument("id", "give the silence's number, ?id=N") from None
                monitoring.silences.remove(silence_id)
                return _json({"removed": silence_id})
        except NotFound as exc:
            return _json({"error": exc.message}, status=404)
        except (InvalidArgument, ConfigError) as exc:
            return _json({"error": exc.message}, status=400)
        return _json({"error": f"unknown action {action!r}"}, status=404)

    return [
        Route("/", index),
        Route("/metrics", metrics),
        Route("/api/overview", overview),
        Route("/api/stream", stream),
        Route("/api/traffic", traffic),
        Route("/api/breakdown", breakdown),
        Route("/api/topology", topology),
        Route("/api/impact", impact),
        Route("/api/alerts", alerts),
        Route("/api/metering/quality", quality),
        Route("/api/alerts/{action}", alert_action, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]


def _json(data: Any, *, status: int = 200) -> Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return Response(body, status_code=status, media_type="application/json")
