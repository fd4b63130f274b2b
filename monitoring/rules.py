"""Alert rules: what to watch for, read from the ``[[alerts]]`` tables of the config file.

>>> rules = parse_rules([{"name": "echo errors", "kind": "error_share", "threshold": 0.1,
...                       "service": "powerbus.echo.v1.Echo", "window": "30s"}])
>>> (rules[0].kind.value, rules[0].window.total_seconds(), rules[0].severity.value)
('error_share', 30.0, 'warning')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Any

from powerbus.bus.kernel.config import parse_duration
from powerbus.bus.kernel.errors import ConfigError

__all__ = ["DEFAULT_RULES", "AlertKind", "AlertRule", "Severity", "parse_rules"]


class AlertKind(str, Enum):
    """What a rule watches."""

    ERROR_SHARE = "error_share"
    """A service's share of failed calls over ``window`` is above ``threshold`` (0..1)."""
    P99_LATENCY = "p99_latency"
    """A service's 99th percentile latency over ``window`` is above ``threshold`` seconds."""
    NODE_DOWN = "node_down"
    """A node's lease lapsed, or every recent call to it failed UNAVAILABLE."""
    NO_HEALTHY_NODE = "no_healthy_node"
    """A registered service has no node that is up."""
    LEASE_FLAPPING = "lease_flapping"
    """A node changed health at least ``threshold`` times within ``window``."""
    SUBSCRIBER_LAG = "subscriber_lag"
    """An event subscriber is more than ``threshold`` events behind (summed over the
    sources it reads; ``node`` names one subscriber)."""
    GATEWAY_QUALITY = "gateway_quality"
    """A meter gateway's share of readings received of those expected over ``window`` is
    below ``threshold`` (0..1), with at least ``min_requests`` expected; ``node`` names one
    gateway (HOST:PORT)."""


class Severity(str, Enum):
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, kw_only=True)
class AlertRule:
    """One rule; ``service``/``node`` empty means every one."""

    name: str
    kind: AlertKind
    severity: Severity = Severity.WARNING
    service: str = ""
    node: str = ""
    threshold: float = 0.0
    window: timedelta = timedelta(minutes=1)
    min_requests: int = 10
    """Traffic rules stay quiet on fewer calls than this within ``window``."""
    hold: timedelta = timedelta(0)
    """How long the condition must hold before the alert is raised (TOML key ``for``)."""

    def matches_service(self, service: str) -> bool:
        return not self.service or self.service == service

    def matches_node(self, node_id: str) -> bool:
        return not self.node or self.node == node_id


DEFAULT_RULES: tuple[AlertRule, ...] = (
    # Hold times (``for``) keep a blip from paging anyone: a node is down once its lease
    # lapsed or its calls failed for a few seconds, traffic rules once the excess held for
    # half a minute (Prometheus's own alerting rules work the same way).
    AlertRule(
        name="node-down",
        kind=AlertKind.NODE_DOWN,
        severity=Severity.CRITICAL,
        hold=timedelta(seconds=5),
    ),
    AlertRule(
        name="service-without-healthy-node",
        kind=AlertKind.NO_HEALTHY_NODE,
        severity=Severity.CRITICAL,
        hold=timedelta(seconds=5),
    ),
    AlertRule(
        name="error-share",
        kind=AlertKind.ERROR_SHARE,
        threshold=0.05,
        min_requests=20,
        hold=timedelta(seconds=30),
    ),
    AlertRule(
        name="p99-latency",
        kind=AlertKind.P99_LATENCY,
        threshold=1.0,
        min_requests=20,
        hold=timedelta(seconds=30),
    ),
    AlertRule(
        name="lease-flapping",
        kind=AlertKind.LEASE_FLAPPING,
        threshold=4,
        window=timedelta(minutes=5),
    ),
    AlertRule(
        # The Prometheus rule's threshold and hold (PowerbusEventSubscriberLag): a subscriber
        # catching up by replay after a restart is briefly far behind, not yet a page.
        name="event-subscriber-lag",
        kind=AlertKind.SUBSCRIBER_LAG,
        threshold=10_000,
        hold=timedelta(minutes=2),
    ),
    AlertRule(
        # Over an hour, a 15-minute poll of every meter is four chances per meter: one
        # whole poll of a line lost is 75 %, a meter in ten silent 90 %. The window itself
        # smooths a blip, so no hold on top.
        name="gateway-data-quality",
        kind=AlertKind.GATEWAY_QUALITY,
        threshold=0.95,
        window=timedelta(hours=1),
        min_requests=10,
    ),
)
"""Rules every bus runs unless ``[monitoring] default_alerts = false``."""

_KEYS = {"name", "kind", "severity", "service", "node", "threshold", "window", "min_requests"}
_THRESHOLD_NEEDED = {
    AlertKind.ERROR_SHARE,
    AlertKind.P99_LATENCY,
    AlertKind.LEASE_FLAPPING,
    AlertKind.SUBSCRIBER_LAG,
    AlertKind.GATEWAY_QUALITY,
}


def parse_rules(
    tables: Iterable[Mapping[str, Any]], *, source: str = "[[alerts]]"
) -> list[AlertRule]:
    """Rules from TOML tables; :class:`ConfigError` naming the table and key at fault."""
    rules: list[AlertRule] = []
    names: set[str] = set()
    for i, table in enumerate(tables):
        where = f"{source} #{i + 1}"
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where}: must be a table")
        unknown = sorted(set(table) - _KEYS - {"for"})
        if unknown:
            raise ConfigError(f"{where}: unknown key(s): {', '.join(unknown)}")
        rule = _rule(table, where)
        if rule.name in names:
            raise ConfigError(f"{where}: name {rule.name!r} used twice")
        names.add(rule.name)
        rules.append(rule)
    return rules


def _rule(table: Mapping[str, Any], where: str) -> AlertRule:
    name = str(table.get("name", "")).strip()
    if not name:
        raise ConfigError(f"{where}: name is required")
    kind = _enum(AlertKind, table.get("kind"), f"{where} kind")
    if kind in _THRESHOLD_NEEDED and "threshold" not in table:
        raise ConfigError(f"{where}: kind {kind.value} needs a threshold")
    try:
        threshold = float(table.get("threshold", 0.0))
        min_requests = int(table.get("min_requests", 10))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if kind is AlertKind.ERROR_SHARE and not 0 <= threshold <= 1:
        raise ConfigError(f"{where} threshold: an error share is between 0 and 1")
    if kind is AlertKind.GATEWAY_QUALITY and not 0 <= threshold <= 1:
        raise ConfigError(f"{where} threshold: a received share is between 0 and 1")
    rule = AlertRule(
        name=name,
        kind=kind,
        severity=_enum(Severity, table.get("severity", "warning"), f"{where} severity"),
        service=str(table.get("service", "")),
        node=str(table.get("node", "")),
        threshold=threshold,
        window=parse_duration(table.get("window", "1m"), field=f"{where} window"),
        min_requests=min_requests,
        hold=parse_duration(table.get("for", 0), field=f"{where} for"),
    )
    if rule.window <= timedelta(0):
        raise ConfigError(f"{where} window: must be positive")
    return rule


def _enum(cls: type[Any], raw: object, where: str) -> Any:
    for member in cls:
        if str(raw).strip().lower() == member.value:
            return member
    choices = ", ".join(m.value for m in cls)
    raise ConfigError(f"{where}: expected one of {choices}, got {raw!r}")
