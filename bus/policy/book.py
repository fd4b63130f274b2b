"""Effective policies: defaults and stored overrides, layered, per service.

Layers, later ones winning: the built-in defaults, the policy file's ``[policy]`` table,
its ``[policy.services."NAME"]`` table, then the overrides stored in the registry database
for every service (``"*"``), then those stored for the service. Run-time changes thus beat
the file, and a service's own settings beat everyone's.

>>> book = PolicyBook(PolicyDefaults(common={"timeout": "5s"}))
>>> book.apply([StoredPolicy(service="s", settings={"picker": "random"}, revision=1)])
{'s'}
>>> (book.policy("s").balancer.picker.value, book.policy("s").calls.timeout_s)
('random', 5.0)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from powerbus.bus.kernel.config import read_toml
from powerbus.bus.kernel.errors import ConfigError, InvalidArgument
from powerbus.bus.kernel.policy import ALL_SERVICES, ServicePolicy

__all__ = ["ALL_SERVICES", "PolicyBook", "PolicyDefaults", "StoredPolicy", "load_policy_defaults"]

"""The service name under which overrides for every service are stored."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredPolicy:
    """The overrides stored for one service (or ``"*"``); empty once reset."""

    service: str
    settings: Mapping[str, str]
    revision: int
    updated_at: datetime | None = None
    updated_by: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyDefaults:
    """What the bus's policy file sets: for every service, and per service."""

    common: Mapping[str, object] = field(default_factory=dict)
    services: Mapping[str, Mapping[str, object]] = field(default_factory=dict)


def load_policy_defaults(path: str | Path) -> PolicyDefaults:
    """Read the ``[policy]`` table of a TOML file; errors name the file and the key.

    The table holds settings for every service, nested or dotted (``[policy.retry]
    max_attempts = 2`` or ``"retry.max_attempts" = 2``), and ``[policy.services."NAME"]``
    tables for single services.
    """
    table = read_toml(path, what="policy file").get("policy", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [policy] must be a table")
    services = table.pop("services", {})
    if not isinstance(services, dict):
        raise ConfigError(f"{path}: [policy.services] must be a table of services")
    defaults = PolicyDefaults(
        common=_flatten(table, ""),
        services={name: _flatten(t, "") for name, t in services.items() if isinstance(t, dict)},
    )
    try:
        ServicePolicy.from_settings(defaults.common)
        for settings in defaults.services.values():
            ServicePolicy.from_settings(settings)
    except InvalidArgument as exc:
        raise ConfigError(f"{path} [policy]: {exc.message}") from None
    return defaults


def _flatten(table: Mapping[str, Any], prefix: str) -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


class PolicyBook:
    """Every service's effective policy, kept current by :meth:`apply`."""

    def __init__(self, defaults: PolicyDefaults | None = None) -> None:
        self.defaults = defaults or PolicyDefaults()
        self.revision = 0
        self._stored: dict[str, StoredPolicy] = {}
        self._cache: dict[str, ServicePolicy] = {}
        self._base = ServicePolicy.from_settings(self.defaults.common)

    def stored(self, service: str) -> StoredPolicy | None:
        """What the database holds for ``service`` (``None`` if nothing)."""
        found = self._stored.get(service)
        return found if found is not None and found.settings else None

    def services(self) -> list[str]:
        """Services with stored overrides or a table in the policy file, sorted."""
        names = {s for s, p in self._stored.items() if p.settings} | set(self.defaults.services)
        return sorted(names)

    def policy(self, service: str) -> ServicePolicy:
        """The effective policy of ``service``."""
        found = self._cache.get(service)
        if found is None:
            found = self._cache[service] = self._build(service)
        return found

    def layers(self, service: str) -> list[Mapping[str, object]]:
        """The setting layers of ``service`` after the built-in and common defaults."""
        everyone = self._stored.get(ALL_SERVICES)
        own = self._stored.get(service) if service != ALL_SERVICES else None
        return [
            self.defaults.services.get(service, {}),
            everyone.settings if everyone else {},
            own.settings if own else {},
        ]

    def apply(self, changes: Iterable[StoredPolicy]) -> set[str]:
        """Take in stored changes; returns the services whose policy changed (``"*"``
        when every service's did)."""
        changed: set[str] = set()
        for stored in changes:
            self._stored[stored.service] = stored
            self.revision = max(self.revision, stored.revision)
            changed.add(stored.service)
        if ALL_SERVICES in changed:
            self._cache.clear()
        else:
            for service in changed:
                self._cache.pop(service, None)
        return changed

    def replace_defaults(self, defaults: PolicyDefaults) -> set[str]:
        """Take new policy-file defaults (a reloaded file); every service may change."""
        base = ServicePolicy.from_settings(defaults.common)  # raises before changing anything
        self.defaults, self._base = defaults, base
        self._cache.clear()
        return {ALL_SERVICES}

    def _build(self, service: str) -> ServicePolicy:
        try:
            return ServicePolicy.from_settings(*self.layers(service), base=self._base)
        except InvalidArgument:
            # A stored override that this version no longer knows: keep the rest working.
            own_defaults = self.defaults.services.get(service, {})
            return ServicePolicy.from_settings(own_defaults, base=self._base)
