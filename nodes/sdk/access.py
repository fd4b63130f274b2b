"""A node decides the calls that reach it without the router, by the bus's rules.

Proxyless clients call nodes directly, so the router never sees those calls. Under mTLS a
node knows who is calling (the caller's certificate) and checks each call against the
bus's access rules, which it reads with ``Registry.GetAccessRules`` every ``refresh``
seconds. Calls from a bus (``bus/...``) pass: the router decided them already. Without
TLS nothing proves who is calling, so nodes do not check (docs/security.md).

Until the node has read the rules, it refuses every caller but the bus: a proxyless
client cannot slip through while the node starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc

from powerbus.bus.kernel.access_rules import ANONYMOUS, Effect, Right, Rule, RuleSet
from powerbus.bus.kernel.identity import identity_of
from powerbus.bus.kernel.lifecycle import Lifecycle
from powerbus.bus.kernel.metadata import IDENTITY_KEY
from powerbus.registry.v1 import registry_pb2

if TYPE_CHECKING:
    from powerbus.registry.v1.registry_pb2_grpc import RegistryAsyncStub

__all__ = ["AccessGate", "AccessMiddleware", "caller_identity"]

log = logging.getLogger(__name__)

# The bus's own upkeep with the node, not calls of anyone's.
_EXEMPT = ("/grpc.health.v1.", "/powerbus.registry.v1.NodeInstance/", "/powerbus.link.")


def caller_identity(context: Any) -> str:
    """Who is calling, as proved: for a call forwarded by a bus (its certificate names
    ``bus/...``), the identity the router proved and stamped; for a direct call, the
    caller's own certificate. "" when nothing proves it (no TLS, or access control off)."""
    peer = identity_of(context).name
    if not peer.startswith("bus/"):
        return peer
    for key, value in context.invocation_metadata() or ():
        if key == IDENTITY_KEY and isinstance(value, str):
            return value
    return ""


class AccessGate(Lifecycle):
    """The bus's rules as this node last read them."""

    def __init__(self, registry: RegistryAsyncStub, *, refresh: float = 5.0) -> None:
        self._registry = registry
        self._refresh = refresh
        self.enabled = True
        """Whether rules decide; until the first read, yes, with no rule (fail closed)."""
        self.rules = RuleSet()
        self.known = False
        """Whether the rules were read at least once."""
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError):
            await self.read()
        if self._task is None:
            self._task = asyncio.create_task(self._read_forever(), name="access-gate")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def read(self) -> None:
        """Read the rules now."""
        reply: registry_pb2.GetAccessRulesResponse = await self._registry.GetAccessRules(
            registry_pb2.GetAccessRulesRequest(), timeout=min(self._refresh, 3.0)
        )
        self.rules = RuleSet(
            Rule(r.rule_id, r.identity, Right(r.right), r.target, Effect(r.effect))
            for r in reply.rules
        )
        self.enabled = reply.enabled
        self.known = True

    async def _read_forever(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._refresh)
            try:
                await self.read()
            except (grpc.aio.AioRpcError, ValueError) as error:
                if not failing:
                    log.warning("access rules not read, keeping the last ones: %s", error)
                failing = True
            else:
                failing = False


class AccessMiddleware:
    """Refuses, with PERMISSION_DENIED naming the identity, the method and the rule, a call
    the rules do not allow (calls from a bus pass)."""

    def __init__(self, gate: AccessGate, *, node_id: str) -> None:
        self._gate = gate
        self._node_id = node_id

    @contextlib.asynccontextmanager
    async def around(self, method: str, context: Any) -> AsyncIterator[None]:
        gate = self._gate
        if gate.enabled and not method.startswith(_EXEMPT):
            name = identity_of(context).name or ANONYMOUS
            if not name.startswith("bus/"):
                target = method.lstrip("/")
                decision = gate.rules.decide(name, Right.CALL, target)
                if not decision.allowed:
                    reason = (
                        decision.reason if gate.known else "the node has not read the rules yet"
                    )
                    await context.abort(
                        grpc.StatusCode.PERMISSION_DENIED,
                        f"{name} may not call {target}: {reason} (checked by {self._node_id})",
                    )
        yield
