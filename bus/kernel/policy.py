"""A service's policy: its balancer's settings and how its calls are made, as dotted keys.

Every setting has a key, derived from the settings dataclasses of
:mod:`powerbus.load_balancer` so the two never drift: ``picker``, ``timeout``,
``retry.max_attempts``, ``outlier.base_ejection``, ``breaker.open``, ``health.interval``
and so on (``powerbus policy keys`` lists them all). Durations are keys whose field ends in
``_s`` (written ``250ms``, ``10s``, ``5m``); code sets are comma-separated status names.

>>> policy = ServicePolicy.from_settings({"picker": "peak_ewma", "retry.max_attempts": "2"})
>>> (policy.balancer.picker.value, policy.calls.retry.max_attempts, policy.calls.timeout_s)
('peak_ewma', 2, 0.0)
>>> ServicePolicy.from_settings({"retry.max_attemps": "2"})
Traceback (most recent call last):
powerbus.bus.kernel.errors.InvalidArgument: retry.max_attemps: unknown policy setting
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from powerbus.bus.kernel.config import parse_duration
from powerbus.bus.kernel.errors import ConfigError, InvalidArgument
from powerbus.load_balancer import BalancerSettings, CallPolicy
from powerbus.load_balancer.status import StatusCode

__all__ = ["ALL_SERVICES", "PolicyKey", "ServicePolicy", "policy_keys"]

ALL_SERVICES = "*"
"""The policy name that applies to every service."""

# Key prefixes that differ from the field's name.
_ALIASES = {"node_breaker": "breaker"}
_SHARES = {
    "failure_share",
    "max_ejected_share",
    "failure_ratio",
    "budget_ratio",
    "standby_threshold",
    "panic_threshold",
    "min_weight",
    "jitter",
}
_AT_LEAST_ONE = {"max_attempts", "window", "probes", "forks", "points_per_100"}
_POSITIVE = {"decay_s", "interval_s", "aggression"}


@dataclass(frozen=True, slots=True)
class PolicyKey:
    """One setting: its dotted key, where it lives, and its type."""

    key: str
    path: tuple[str, ...]
    """Attribute path from :class:`ServicePolicy`, e.g. ``("calls", "retry", "max_attempts")``."""
    kind: Any
    duration: bool

    def parse(self, raw: object) -> object:
        """The typed value of ``raw`` (text from the CLI, or a TOML value)."""
        try:
            value = self._convert(raw)
        except (ValueError, ConfigError) as exc:
            problem = exc.message if isinstance(exc, ConfigError) else str(exc)
            raise InvalidArgument(self.key, problem.removeprefix(f"{self.key}: ")) from None
        self._check(value)
        return value

    def show(self, value: object) -> str:
        """``value`` as text, the way :meth:`parse` reads it back."""
        if self.duration:
            return _show_duration(float(value))  # type: ignore[arg-type]
        if isinstance(value, Enum):
            return str(value.value)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, frozenset):
            return ",".join(sorted(value))
        return str(value)

    def _convert(self, raw: object) -> object:
        kind = self.kind
        if self.duration:
            return parse_duration(raw, field=self.key).total_seconds()  # type: ignore[arg-type]
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text not in {"true", "false", "1", "0", "yes", "no", "on", "off"}:
                raise ValueError(f"expected true or false, got {raw!r}")
            return text in {"true", "1", "yes", "on"}
        if isinstance(kind, type) and issubclass(kind, Enum):
            text = str(raw).strip().lower()
            for member in kind:
                if text == member.value:
                    return member
            choices = ", ".join(m.value for m in kind)
            raise ValueError(f"expected one of {choices}, got {raw!r}")
        if kind is int:
            if isinstance(raw, (float, bool)):
                raise ValueError(f"expected a whole number, got {raw!r}")
            return int(str(raw).strip())
        if kind is float:
            if isinstance(raw, bool):
                raise ValueError(f"expected a number, got {raw!r}")
            return float(str(raw).strip())
        if typing.get_origin(kind) is frozenset:
            items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
            names = [str(c).strip().upper() for c in items if str(c).strip()]
            unknown = sorted(n for n in names if n not in StatusCode.__members__)
            if unknown:
                raise ValueError(f"not gRPC status code names: {', '.join(unknown)}")
            return frozenset(StatusCode[n] for n in names)
        raise ValueError(f"unsupported setting type {kind!r}")  # pragma: no cover

    def _check(self, value: object) -> None:
        name = self.path[-1]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return
        if value < 0:
            raise InvalidArgument(self.key, f"must not be negative, got {self.show(value)}")
        if name in _SHARES and value > 1:
            raise InvalidArgument(self.key, f"is a share: 0 to 1, got {value}")
        if name in _AT_LEAST_ONE and value < 1:
            raise InvalidArgument(self.key, f"must be at least 1, got {value}")
        if name in _POSITIVE and value == 0:
            raise InvalidArgument(self.key, "must be more than 0")
        if name == "balance_factor" and 0 < value < 1:
            raise InvalidArgument(self.key, f"must be 0 (off) or at least 1, got {value}")


def _show_duration(seconds: float) -> str:
    if seconds and seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"


def _walk(cls: type, path: tuple[str, ...], prefix: str) -> Iterator[PolicyKey]:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            alias = _ALIASES.get(f.name, f.name)
            yield from _walk(hint, (*path, f.name), f"{prefix}{alias}.")  # type: ignore[arg-type]
            continue
        duration = f.name.endswith("_s") and hint is float
        name = f.name.removesuffix("_s") if duration else f.name
        yield PolicyKey(f"{prefix}{name}", (*path, f.name), hint, duration)


_KEYS: dict[str, PolicyKey] = {
    k.key: k
    for k in (
        *_walk(BalancerSettings, ("balancer",), ""),
        *_walk(CallPolicy, ("calls",), ""),
    )
}


def policy_keys() -> dict[str, PolicyKey]:
    """Every setting by its key, sorted.

    >>> [k for k in policy_keys() if k.startswith("hedge.")]
    ['hedge.delay', 'hedge.max_hedges']
    """
    return dict(sorted(_KEYS.items()))


@dataclass(frozen=True, slots=True, kw_only=True)
class ServicePolicy:
    """Everything that decides how one service's calls are balanced and made."""

    balancer: BalancerSettings = field(default_factory=BalancerSettings)
    calls: CallPolicy = field(default_factory=CallPolicy)

    @classmethod
    def from_settings(
        cls, *layers: Mapping[str, object], base: ServicePolicy | None = None
    ) -> ServicePolicy:
        """``base`` (the built-in defaults) with each layer of settings applied in turn;
        :class:`InvalidArgument` names the first bad key."""
        policy = base or cls()
        for layer in layers:
            for key, raw in layer.items():
                spec = _KEYS.get(key)
                if spec is None:
                    raise InvalidArgument(key, "unknown policy setting")
                policy = _replace(policy, spec.path, spec.parse(raw))
        return policy

    def settings(self) -> dict[str, str]:
        """Every setting's value as text, by key."""
        return {key: spec.show(self.get(key)) for key, spec in policy_keys().items()}

    def get(self, key: str) -> object:
        """One setting's typed value."""
        spec = _KEYS.get(key)
        if spec is None:
            raise InvalidArgument(key, "unknown policy setting")
        value: object = self
        for name in spec.path:
            value = getattr(value, name)
        return value


def _replace(obj: Any, path: tuple[str, ...], value: object) -> Any:
    head, *rest = path
    new = _replace(getattr(obj, head), tuple(rest), value) if rest else value
    return dataclasses.replace(obj, **{head: new})
