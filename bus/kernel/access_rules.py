"""Access rules: who may do what to which target, decided without I/O.

A rule names an identity pattern, a right, a target pattern and an effect. Patterns are
shell-style wildcards (``node/billing-*``, ``powerbus.metering.v1.*/*``). A request is
denied if any matching rule denies it, else allowed if any matching rule allows it, else
denied by default: once access control is on, nothing is allowed that no rule names.

>>> rules = RuleSet([
...     Rule(1, "node/billing-*", Right.CALL, "powerbus.metering.v1.Metering/*", Effect.ALLOW),
...     Rule(2, "*", Right.CALL, "*/DeleteMeter", Effect.DENY),
... ])
>>> rules.decide("node/billing-1", Right.CALL, "powerbus.metering.v1.Metering/GetReadings").allowed
True
>>> print(rules.decide("node/billing-1", Right.CALL, "x.Y/DeleteMeter").reason)
rule 2 (deny * call */DeleteMeter)
>>> print(rules.decide("node/crm-1", Right.CALL, "a.B/C").reason)
no rule allows it (default deny)
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Iterable
from enum import Enum
from functools import lru_cache

from powerbus.bus.kernel.errors import InvalidArgument

__all__ = ["ANONYMOUS", "Decision", "Effect", "Right", "Rule", "RuleSet", "check_pattern"]

ANONYMOUS = "anonymous"
"""The identity name of a caller that proved nothing (no certificate, no token)."""

_PATTERN = re.compile(r"^[A-Za-z0-9_.*?/\-\[\]!:@]{1,200}$")


class Right(str, Enum):
    """What a rule grants or denies; the target each right is checked against."""

    CALL = "call"
    """Call a method through the router or a node (target ``pkg.Service/Method``)."""
    SERVE = "serve"
    """Register a node serving a service (target ``pkg.Service``)."""
    READ = "read"
    """Read the registry and schemas: ListNodes, Watch, reflection (target ``registry``)."""
    POLICY = "policy"
    """Change a service's load-balancing policy (target ``pkg.Service``)."""
    REPORT = "report"
    """Report traffic to monitoring (target ``traffic``)."""
    ADMIN = "admin"
    """Operator actions on nodes, tokens and rules (target ``nodes``, ``tokens``, ``rules``)."""


class Effect(str, Enum):
    """Whether a matching rule lets the request through."""

    ALLOW = "allow"
    DENY = "deny"


def check_pattern(field: str, pattern: str) -> str:
    """``pattern`` if it is a usable wildcard pattern; :class:`InvalidArgument` naming
    ``field`` otherwise."""
    if not _PATTERN.match(pattern):
        raise InvalidArgument(
            field,
            f"{pattern!r} is not a pattern: 1 to 200 of letters, digits and . _ - / : @ "
            "with wildcards * ? [ ]",
        )
    return pattern


@lru_cache(maxsize=4096)
def _matcher(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern))


@dataclasses.dataclass(frozen=True, slots=True)
class Rule:
    """One stored rule; ``rule_id`` orders them and names them in refusals."""

    rule_id: int
    identity: str
    right: Right
    target: str
    effect: Effect

    def matches(self, identity: str, right: Right, target: str) -> bool:
        """Whether this rule speaks to ``identity`` doing ``right`` on ``target``."""
        return (
            self.right is right
            and _matcher(self.identity).match(identity) is not None
            and _matcher(self.target).match(target) is not None
        )

    def __str__(self) -> str:
        return f"{self.effect.value} {self.identity} {self.right.value} {self.target}"


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of :meth:`RuleSet.decide`, with the rule that decided it (if any)."""

    allowed: bool
    rule: Rule | None

    @property
    def reason(self) -> str:
        if self.rule is None:
            return "no rule allows it (default deny)"
        return f"rule {self.rule.rule_id} ({self.rule})"


class RuleSet:
    """An immutable set of rules and the decisions they make (cached per request shape:
    routed calls ask the same few questions over and over)."""

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self.rules: tuple[Rule, ...] = tuple(sorted(rules, key=lambda r: r.rule_id))
        self._by_right: dict[Right, tuple[Rule, ...]] = {
            right: tuple(r for r in self.rules if r.right is right) for right in Right
        }
        self._decided: dict[tuple[str, Right, str], Decision] = {}

    def decide(self, identity: str, right: Right, target: str) -> Decision:
        """Deny if a matching rule denies, allow if one allows, else deny by default."""
        key = (identity, right, target)
        decided = self._decided.get(key)
        if decided is not None:
            return decided
        allowing: Rule | None = None
        decision: Decision | None = None
        for rule in self._by_right[right]:
            if not rule.matches(identity, right, target):
                continue
            if rule.effect is Effect.DENY:
                decision = Decision(False, rule)
                break
            allowing = allowing or rule
        if decision is None:
            decision = Decision(allowing is not None, allowing)
        if len(self._decided) < 65_536:  # bounded: identities and targets are callers' to vary
            self._decided[key] = decision
        return decision
