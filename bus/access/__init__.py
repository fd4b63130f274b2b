"""Access control: identities from certificates or bearer tokens, rules per right, and the
audit record of administrative changes (docs/security.md, "Access control").

- :mod:`~powerbus.bus.kernel.access_rules`: rules and decisions, pure (in the kernel, so
  nodes decide proxyless calls with the same code);
- :mod:`~powerbus.bus.access.tokens`, :mod:`~powerbus.bus.access.rule_store`,
  :mod:`~powerbus.bus.access.audit`: the stored parts, with :class:`AccessStore` over them;
- :mod:`~powerbus.bus.access.control`: what the bus's entry points ask.
"""

from __future__ import annotations

from powerbus.bus.access.audit import Actor, AuditEntry, AuditLog
from powerbus.bus.access.control import AUTHORIZATION_KEY, AccessControl, bearer_metadata
from powerbus.bus.access.store import AccessStore
from powerbus.bus.kernel.access_rules import ANONYMOUS, Decision, Effect, Right, Rule, RuleSet

__all__ = [
    "ANONYMOUS",
    "AUTHORIZATION_KEY",
    "AccessControl",
    "AccessStore",
    "Actor",
    "AuditEntry",
    "AuditLog",
    "Decision",
    "Effect",
    "Right",
    "Rule",
    "RuleSet",
    "bearer_metadata",
]
