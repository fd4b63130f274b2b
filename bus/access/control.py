"""Who is calling and what they may do: the check every guarded entry point makes.

:class:`AccessControl` establishes a caller's identity (its certificate under mTLS, else
a bearer token in the ``authorization`` metadata, else anonymous) and, when access control
is on, decides each request by the stored rules. Tokens and rules are held in memory; every
``refresh`` seconds the bus asks whether the audit record grew (every token and rule
change writes its entry) and only then reads them again, so a revoked token or a new
rule takes effect on every bus within about that interval, and a call costs no query.

With access control off (the loopback development mode) every request is allowed; a
token still proves its identity, so the registry can still tell a node's holder.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import grpc

from powerbus.bus.access.store import AccessStore
from powerbus.bus.access.tokens import StoredToken, parse_token
from powerbus.bus.kernel.access_rules import ANONYMOUS, Decision, Right, RuleSet
from powerbus.bus.kernel.errors import PermissionDenied, Unauthenticated
from powerbus.bus.kernel.identity import Identity, IdentityMethod, identity_of, node_identity
from powerbus.bus.kernel.lifecycle import Lifecycle
from powerbus.bus.kernel.metadata import AUTHORIZATION_KEY, HTTP_TOKEN_PREFIX
from powerbus.bus.kernel.peers import peer_host

__all__ = ["AUTHORIZATION_KEY", "AccessControl", "bearer_metadata"]

log = logging.getLogger(__name__)

_BEARER = "bearer "


def bearer_metadata(token: str) -> tuple[str, str]:
    """The metadata pair that presents ``token``."""
    return (AUTHORIZATION_KEY, f"Bearer {token}")


class _Context(Protocol):
    def auth_context(self) -> Any: ...

    def peer(self) -> str: ...

    def invocation_metadata(self) -> Any: ...


def _presented(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if (
            key == AUTHORIZATION_KEY
            and isinstance(value, str)
            and value[: len(_BEARER)].lower() == _BEARER
        ):
            return value[len(_BEARER) :]
    return None


class AccessControl(Lifecycle):
    """Identities and decisions for one bus; ``enabled`` switches rules on."""

    def __init__(
        self, store: AccessStore | None = None, *, enabled: bool = False, refresh: float = 1.0
    ) -> None:
        if enabled and store is None:
            raise ValueError("access control needs a store of tokens and rules")
        self.store = store
        self.enabled = enabled
        self._refresh = refresh
        self._rules = RuleSet()
        self._tokens: Mapping[str, StoredToken] = {}
        self._read_at = -1
        """The audit entry id when tokens and rules were last read."""
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.store is None:  # certificates only: nothing stored to read
            return
        await asyncio.to_thread(self.store.migrate)
        await self.reload()
        if self._task is None:
            self._task = asyncio.create_task(self._reload_forever(), name="access-reload")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def reload(self) -> None:
        """Read tokens and rules now (also what a change made here does at once)."""
        if self.store is None:
            return
        # One small query a second; the tables themselves only when something changed.
        latest = await asyncio.to_thread(self.store.audit.latest)
        if latest == self._read_at:
            return
        tokens = await asyncio.to_thread(self.store.tokens.live_index)
        rules = await asyncio.to_thread(self.store.rules.rule_set)
        self._tokens, self._rules, self._read_at = tokens, rules, latest

    async def _reload_forever(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._refresh)
            try:
                await self.reload()
            except Exception as exc:  # the database may be away: keep what we have
                if not failing:
                    log.warning("access rules reload failed, keeping the last ones: %s", exc)
                failing = True
            else:
                failing = False

    # -- identity ---------------------------------------------------------------------

    def identify(self, context: _Context) -> Identity:
        """The caller's identity; :class:`Unauthenticated` if it presents a token that
        proves nothing (a wrong token is refused, never taken as anonymous)."""
        who = identity_of(context)
        if who.authenticated:
            return who
        text = _presented(context.invocation_metadata())
        if text is None:
            return who
        presented = parse_token(text)
        if presented is None:
            if text.startswith(HTTP_TOKEN_PREFIX):
                raise Unauthenticated(
                    "authorization: that is an HTTP API token (powerbus users token); gRPC "
                    "callers prove themselves with one from powerbus tokens create"
                )
            raise Unauthenticated("authorization: the bearer token is not a powerbus token")
        stored = self._tokens.get(presented.token_id)
        if stored is None or not presented.matches(stored.secret_sha256):
            raise Unauthenticated(
                f"authorization: token {presented.token_id} is unknown or revoked"
            )
        return Identity(name=stored.identity, method=IdentityMethod.TOKEN, peer=who.peer)

    # -- decisions --------------------------------------------------------------------

    @property
    def rules(self) -> RuleSet:
        """The rules in force now (what ``GetAccessRules`` gives nodes)."""
        return self._rules

    def decide(self, identity: Identity, right: Right, target: str) -> Decision:
        """What the rules say (allowed when access control is off)."""
        if not self.enabled:
            return Decision(True, None)
        return self._rules.decide(identity.name or ANONYMOUS, right, target)

    def check(self, identity: Identity, right: Right, target: str) -> None:
        """:class:`PermissionDenied` naming the identity, the request and the rule, unless
        allowed."""
        decision = self.decide(identity, right, target)
        if not decision.allowed:
            raise PermissionDenied(
                f"{identity.name or ANONYMOUS} may not {right.value} {target}: {decision.reason}"
            )

    def authorize(self, context: _Context, right: Right, target: str) -> Identity:
        """Identify the caller of ``context`` and :meth:`check` it; the identity."""
        identity = self.identify(context)
        self.check(identity, right, target)
        return identity

    def authorize_node(self, context: _Context, node_id: str, action: str) -> Identity:
        """Identify a caller acting as node ``node_id`` (register, heartbeat, deregister):
        a proved identity must be ``node/<node_id>``; an anonymous one passes only while
        access control is off (the loopback development mode, where nothing is proved)."""
        identity = self.identify(context)
        if identity.authenticated and not identity.holds_node(node_id):
            raise PermissionDenied(
                f"{action} {node_id}: the caller's {identity.method.value} names "
                f"{identity.name!r}, not {node_identity(node_id)!r}"
            )
        if self.enabled and not identity.authenticated:
            raise PermissionDenied(
                f"{action} {node_id}: {ANONYMOUS} callers may not act as a node while access "
                "control is on; present the node's certificate or token"
            )
        return identity

    def admit_reporter(self, context: _Context) -> str:
        """For monitoring's ``ReportTraffic``: the key the reporter's rate limit is kept
        under (its identity, else its host), once it may report."""
        identity = self.authorize(context, Right.REPORT, "traffic")
        return identity.name if identity.authenticated else peer_host(identity.peer)

    async def require(self, context: Any, right: Right, target: str) -> Identity:
        """:meth:`authorize`, aborting the call with the refusal's status instead of raising."""
        return await _or_abort(context, self.authorize, context, right, target)

    async def require_node(self, context: Any, node_id: str, action: str) -> Identity:
        """:meth:`authorize_node`, aborting the call with the refusal instead of raising."""
        return await _or_abort(context, self.authorize_node, context, node_id, action)


async def _or_abort(context: Any, check: Callable[..., Identity], *args: Any) -> Identity:
    try:
        return check(*args)
    except (PermissionDenied, Unauthenticated) as error:
        await context.abort(_status(error), str(error))
        raise AssertionError("context.abort returned") from None  # pragma: no cover


def _status(error: PermissionDenied | Unauthenticated) -> grpc.StatusCode:
    if isinstance(error, Unauthenticated):
        return grpc.StatusCode.UNAUTHENTICATED
    return grpc.StatusCode.PERMISSION_DENIED
