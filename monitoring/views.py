"""What the dashboard, the CLI and ``/api`` show: JSON built from counts and the graph.

Every figure comes from one place: cumulative totals (``requests_total``) from the
recorder's tallies, exactly what ``/metrics`` exports; rates, error shares and
percentiles from the difference of two samples over the live window.

>>> overview_json(topology=Topology(nodes=[], services=[], declared=[], observed=[]),
...               live={}, seconds=10.0, tallies={}, in_flight={}, alerts=[], recent=[],
...               started_at=0.0, now=60.0)["totals"]["requests_total"]
0
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from powerbus.load_balancer import StatusCode
from powerbus.monitoring.alerts import Alert
from powerbus.monitoring.tally import Sample, Tally, TallyKey
from powerbus.monitoring.topology import Topology
from powerbus.monitoring.window import Rates, rates_by

__all__ = ["breakdown_json", "overview_json"]

_EMPTY = Rates(requests=0, errors=0, seconds=0.0, sample=Sample())


def overview_json(
    *,
    topology: Topology,
    live: Mapping[TallyKey, Sample],
    seconds: float,
    tallies: Mapping[TallyKey, Tally],
    in_flight: Mapping[tuple[str, str, str], int],
    alerts: Iterable[Alert],
    recent: Iterable[Alert],
    started_at: float,
    now: float,
) -> dict[str, Any]:
    """Services and nodes with health and traffic, totals, and alerts."""
    by_service = rates_by(live, seconds, lambda k: k.service)
    by_node = rates_by(live, seconds, lambda k: k.node_id)
    totals_service = _totals(tallies, lambda k: k.service)
    totals_node = _totals(tallies, lambda k: k.node_id)
    flight_service: dict[str, int] = {}
    flight_node: dict[str, int] = {}
    for (service, _method, node), n in in_flight.items():
        flight_service[service] = flight_service.get(service, 0) + n
        flight_node[node] = flight_node.get(node, 0) + n
    spofs = set(topology.single_points_of_failure())
    services = []
    for s in topology.services:
        services.append(
            {
                "service": s.name,
                "state": s.state,
                "nodes": len(s.nodes),
                "healthy": len(s.healthy),
                "single_point_of_failure": s.name in spofs,
                **_figures(by_service.get(s.name), totals_service.get(s.name)),
                "in_flight": flight_service.get(s.name, 0),
            }
        )
    known = {s.name for s in topology.services}
    for name in sorted(set(totals_service) - known):
        services.append(
            {
                "service": name,
                "state": "unregistered",
                "nodes": 0,
                "healthy": 0,
                "single_point_of_failure": False,
                **_figures(by_service.get(name), totals_service.get(name)),
                "in_flight": flight_service.get(name, 0),
            }
        )
    nodes = [
        {
            "node_id": n.node_id,
            "kind": n.kind,
            "health": n.health.value,
            "services": list(n.services),
            "priority": n.priority,
            "zone": n.zone,
            "address": n.address,
            **_figures(by_node.get(n.node_id), totals_node.get(n.node_id)),
            "in_flight": flight_node.get(n.node_id, 0),
        }
        for n in topology.nodes
    ]
    everything = rates_by(live, seconds, lambda _k: "all").get("all")
    return {
        "now": now,
        "started_at": started_at,
        "window_s": round(seconds, 3),
        "totals": _figures(everything, _totals(tallies, lambda _k: "all").get("all")),
        "services": services,
        "nodes": nodes,
        "alerts": [a.as_json() for a in alerts],
        "recent_alerts": [a.as_json() for a in recent],
    }


def breakdown_json(
    *,
    live: Mapping[TallyKey, Sample],
    seconds: float,
    tallies: Mapping[TallyKey, Tally],
    service: str = "",
    node: str = "",
) -> dict[str, Any]:
    """One service's or one node's traffic split by method, caller, node/service and
    status code."""

    def keep(key: TallyKey) -> bool:
        return (not service or key.service == service) and (not node or key.node_id == node)

    live_kept = {k: s for k, s in live.items() if keep(k)}
    kept = {k: t for k, t in tallies.items() if keep(k)}
    result: dict[str, Any] = {"service": service, "node": node}
    for name, group in (
        ("methods", lambda k: f"{k.service}/{k.method}" if not service else k.method),
        ("callers", lambda k: k.caller or "(unknown)"),
        ("nodes", lambda k: k.node_id or "(none)"),
        ("services", lambda k: k.service),
        ("codes", lambda k: k.code),
        ("origins", lambda k: k.origin.value),
    ):
        rates = rates_by(live_kept, seconds, group)
        totals = _totals(kept, group)
        result[name] = [
            {"name": key, **_figures(rates.get(key), totals.get(key))} for key in sorted(totals)
        ]
    return result


def _totals(
    tallies: Mapping[TallyKey, Tally], group: Callable[[TallyKey], str]
) -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for key, tally in tallies.items():
        name = group(key)
        requests, errors = found.get(name, (0, 0))
        found[name] = (
            requests + tally.count,
            errors + (tally.count if key.code != StatusCode.OK else 0),
        )
    return found


def _figures(rates: Rates | None, totals: tuple[int, int] | None) -> dict[str, Any]:
    requests, errors = totals or (0, 0)
    return {
        "requests_total": requests,
        "errors_total": errors,
        **(rates or _EMPTY).as_json(),
    }
