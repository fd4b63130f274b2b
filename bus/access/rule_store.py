"""Stored access rules: added and removed by operators, audited, loaded by every bus.

>>> # rules = Rules(engine, audit)
>>> # rules.add("node/billing-*", Right.CALL, "*", Effect.ALLOW, Actor.local())
"""

from __future__ import annotations

import sqlalchemy as sa

from powerbus.bus.access.audit import Actor, AuditedTable
from powerbus.bus.access.tables import rules
from powerbus.bus.kernel.access_rules import ANONYMOUS, Effect, Right, Rule, RuleSet, check_pattern
from powerbus.bus.kernel.database import read_transaction, write_transaction
from powerbus.bus.kernel.errors import InvalidArgument, NotFound

__all__ = ["Rules", "parse_effect", "parse_right"]


def parse_right(text: str) -> Right:
    """The :class:`Right` spelled ``text``; :class:`InvalidArgument` listing them otherwise."""
    try:
        return Right(text.strip().lower())
    except ValueError:
        names = ", ".join(r.value for r in Right)
        raise InvalidArgument("right", f"{text!r} is not a right; one of {names}") from None


def parse_effect(text: str) -> Effect:
    """``allow`` or ``deny``."""
    try:
        return Effect(text.strip().lower())
    except ValueError:
        raise InvalidArgument("effect", f"{text!r} is not allow or deny") from None


def _rule(row: sa.Row[tuple[object, ...]]) -> Rule:
    return Rule(
        rule_id=int(row.rule_id),
        identity=str(row.identity),
        right=Right(row.right),
        target=str(row.target),
        effect=Effect(row.effect),
    )


class Rules(AuditedTable):
    """The ``access_rules`` table; each change is audited in its own transaction."""

    def add(self, identity: str, right: Right, target: str, effect: Effect, actor: Actor) -> Rule:
        """Store a rule; the new rule (with its id)."""
        check_pattern("identity", identity)
        check_pattern("target", target)
        if identity != ANONYMOUS and "/" not in identity and "*" not in identity:
            raise InvalidArgument(
                "identity",
                f"{identity!r} names no identity: kind/name such as node/echo-1, a pattern "
                f"such as node/*, or {ANONYMOUS}",
            )
        with write_transaction(self.engine) as conn:
            rule_id = conn.execute(
                sa.insert(rules)
                .values(
                    identity=identity,
                    right=right.value,
                    target=target,
                    effect=effect.value,
                    created_at=self._clock(),
                    created_by=actor.identity,
                )
                .returning(rules.c.rule_id)
            ).scalar_one()
            rule = Rule(int(rule_id), identity, right, target, effect)
            self._audit.add(conn, actor, "rule.add", f"rule {rule_id}", after=str(rule))
        return rule

    def remove(self, rule_id: int, actor: Actor) -> Rule:
        """Delete a rule; the rule as it was."""
        with write_transaction(self.engine) as conn:
            row = conn.execute(sa.select(rules).where(rules.c.rule_id == rule_id)).first()
            if row is None:
                raise NotFound(f"rule_id: no rule {rule_id}")
            conn.execute(sa.delete(rules).where(rules.c.rule_id == rule_id))
            rule = _rule(row)
            self._audit.add(conn, actor, "rule.remove", f"rule {rule_id}", before=str(rule))
        return rule

    def listed(self) -> list[Rule]:
        """Every rule, by id."""
        with read_transaction(self.engine) as conn:
            return [_rule(r) for r in conn.execute(sa.select(rules).order_by(rules.c.rule_id))]

    def rule_set(self) -> RuleSet:
        """The rules as the bus decides with them."""
        return RuleSet(self.listed())
