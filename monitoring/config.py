"""Monitoring settings: the ``[monitoring]`` table and the ``[[alerts]]`` rules of the
bus's config file, resolved like every other config (flags > ``POWERBUS_*`` > TOML).

.. code-block:: toml

    [monitoring]
    retention_10s = "6h"      # 10-second rollups kept this long
    retention_1m = "7d"
    retention_1h = "90d"
    max_callers = 50          # distinct caller label values; more count as "other"

    [[alerts]]
    name = "billing errors"
    kind = "error_share"      # error_share, p99_latency, node_down, no_healthy_node,
    service = "powerbus.billing.v1.Billing"   # lease_flapping, subscriber_lag, gateway_quality
    threshold = 0.02
    window = "5m"
    for = "1m"
    severity = "critical"

>>> cfg = load_monitoring_config(env={"POWERBUS_MAX_CALLERS": "7"})
>>> (cfg.max_callers, [r.name for r in cfg.rules][:2])
(7, ['node-down', 'service-without-healthy-node'])
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from powerbus.bus.kernel.config import read_toml, resolve
from powerbus.bus.kernel.errors import ConfigError
from powerbus.monitoring.rules import DEFAULT_RULES, AlertRule, parse_rules

__all__ = ["MonitoringConfig", "load_monitoring_config"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class MonitoringConfig:
    """Settings of the bus's monitoring (``[monitoring]``; rules from ``[[alerts]]``)."""

    section = "monitoring"

    record_traffic: bool = True
    """Count routed calls. Off only to measure what counting costs."""
    history: bool = True
    """Store rollups in the bus database."""
    retention_10s: timedelta = timedelta(hours=6)
    retention_1m: timedelta = timedelta(days=7)
    retention_1h: timedelta = timedelta(days=90)
    max_callers: int = 50
    """Distinct ``caller`` label values; callers past this count as ``other``."""
    max_nodes: int = 500
    live_window: timedelta = timedelta(seconds=10)
    """Rates, error share and percentiles of the live view are over this window."""
    edge_window: timedelta = timedelta(minutes=1)
    """Rates on the topology's observed edges are over this window."""
    evaluate_interval: timedelta = timedelta(seconds=1)
    """How often alert rules are evaluated."""
    alert_webhooks: str = ""
    """Comma-separated URLs that get every alert raised and cleared, in Alertmanager's
    webhook format (monitoring/delivery.py)."""
    alert_webhook_timeout: timedelta = timedelta(seconds=5)
    """Deadline of each webhook POST."""
    default_alerts: bool = True
    """Run the built-in rules (node down, no healthy node, errors, p99, flapping, event
    subscriber lag)."""
    alert_group_at: int = 10
    """Alerts of one rule raised one per subject; past this many, the rest are one grouped
    alert (subject ``(group)``) that counts and names them."""
    report_rate: float = 20.0
    """Traffic reports a second each reporter (its identity, else its host) may send, after
    ``report_burst`` at once; a reporter sends one per window, so this is generous."""
    report_burst: int = 100
    """Traffic reports each reporter may send at once before ``report_rate`` applies."""
    rules: tuple[AlertRule, ...] = DEFAULT_RULES


def load_monitoring_config(
    *,
    flags: Mapping[str, object | None] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
) -> MonitoringConfig:
    """The monitoring settings of a bus, from its flags, environment and config file."""
    cfg = resolve(MonitoringConfig, flags=flags, env=env, config_file=config_file)
    for name in ("retention_10s", "retention_1m", "retention_1h", "live_window", "edge_window"):
        if getattr(cfg, name) <= timedelta(0):
            raise ConfigError(f"monitoring {name}: must be positive")
    if cfg.max_callers < 1 or cfg.max_nodes < 1:
        raise ConfigError("monitoring max_callers and max_nodes must be at least 1")
    if cfg.alert_group_at < 1:
        raise ConfigError("monitoring alert_group_at must be at least 1")
    if cfg.report_rate <= 0 or cfg.report_burst < 1:
        raise ConfigError("monitoring report_rate must be above 0 and report_burst at least 1")
    configured = parse_rules(_alert_tables(config_file)) if config_file else []
    mine = {r.name for r in configured}
    defaults = [r for r in DEFAULT_RULES if r.name not in mine] if cfg.default_alerts else []
    return dataclasses.replace(cfg, rules=tuple(defaults + configured))


def _alert_tables(path: str | os.PathLike[str]) -> list[Any]:
    tables = read_toml(path).get("alerts", [])
    if not isinstance(tables, list):
        raise ConfigError(f"{path}: alerts must be an array of tables ([[alerts]])")
    return tables
