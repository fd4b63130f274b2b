"""``powerbus.policy.v1.Policies``: read, change and watch per-service policies."""

from __future__ import annotations

import asyncio
import functools
import logging
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, TypeAlias

import grpc
from google.protobuf import json_format

from powerbus.bus.access.audit import Actor, AuditLog
from powerbus.bus.access.control import AccessControl
from powerbus.bus.kernel.access_rules import ANONYMOUS, Right
from powerbus.bus.kernel.errors import PowerbusError
from powerbus.bus.policy.book import ALL_SERVICES
from powerbus.bus.policy.store import check_service
from powerbus.bus.policy.watcher import PolicyWatcher
from powerbus.bus.transport.grpc_status import abort_with
from powerbus.policy.v1 import policy_pb2, policy_pb2_grpc

__all__ = ["PoliciesServicer", "policy_message"]

log = logging.getLogger(__name__)

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
_CLOSED = object()


def policy_message(watcher: PolicyWatcher, service: str) -> policy_pb2.Policy:
    """The effective and stored policy of ``service`` as sent on the wire."""
    book = watcher.book
    stored = book.stored(service)
    message = policy_pb2.Policy(
        service=service,
        settings=book.policy(service).settings(),
        overrides=dict(stored.settings) if stored else {},
        revision=stored.revision if stored else 0,
        updated_by=stored.updated_by if stored else "",
    )
    if stored is not None and stored.updated_at is not None:
        message.updated_at.FromDatetime(stored.updated_at)
    return message


class PoliciesServicer(policy_pb2_grpc.PoliciesServicer):
    """Served by every bus instance; changes go through the shared store."""

    def __init__(
        self,
        watcher: PolicyWatcher,
        *,
        access: AccessControl | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self._watcher = watcher
        self._access = access or AccessControl()
        self._audit = audit
        self._streams: set[asyncio.Queue[object]] = set()

    def close_streams(self) -> None:
        """End every WatchPolicies stream (the bus is stopping)."""
        for queue in self._streams:
            queue.put_nowait(_CLOSED)

    async def GetPolicy(
        self, request: policy_pb2.GetPolicyRequest, context: Context
    ) -> policy_pb2.Policy:
        return await _answer(context, lambda: policy_message(self._watcher, _service(request)))

    async def ListPolicies(
        self, request: policy_pb2.ListPoliciesRequest, context: Context
    ) -> policy_pb2.ListPoliciesResponse:
        services = self._watcher.book.services()
        return policy_pb2.ListPoliciesResponse(
            policies=[policy_message(self._watcher, s) for s in services]
        )

    async def SetPolicy(
        self, request: policy_pb2.SetPolicyRequest, context: Context
    ) -> policy_pb2.Policy:
        async def change() -> policy_pb2.Policy:
            service = _service(request)
            who = self._access.authorize(context, Right.POLICY, service)
            # A proved identity is who changed it; a claim (--by) is kept only as a claim.
            by = who.name if who.authenticated else request.updated_by or _peer(context)
            before = _as_dict(policy_message(self._watcher, service))
            stored = await self._watcher.set(
                service,
                set_=dict(request.set),
                unset=tuple(request.unset),
                reset=request.reset,
                by=by,
            )
            log.info(
                "policy of %s set by %s from %s: %s",
                service,
                stored.updated_by,
                who.peer,
                dict(request.set),
            )
            after = policy_message(self._watcher, service)
            if self._audit is not None:
                actor = Actor(who.name or ANONYMOUS, who.peer)
                record = functools.partial(
                    self._audit.record,
                    actor,
                    "policy.set",
                    service,
                    before=before,
                    after={**_as_dict(after), "claimed_by": request.updated_by},
                )
                await asyncio.to_thread(record)
            return after

        try:
            return await change()
        except PowerbusError as exc:
            await abort_with(context, exc)
            raise  # pragma: no cover - abort raises

    async def WatchPolicies(
        self, request: policy_pb2.WatchPoliciesRequest, context: Context
    ) -> AsyncIterator[policy_pb2.Policy]:
        wanted = {check_service(s) for s in request.services}
        queue: asyncio.Queue[object] = asyncio.Queue()

        def changed(services: set[str]) -> None:
            queue.put_nowait(services)

        unsubscribe: Callable[[], None] = self._watcher.add_listener(changed)
        self._streams.add(queue)
        try:
            # Without a list, "*" comes first: the policy of every service not listed.
            known = [ALL_SERVICES, *(s for s in self._watcher.book.services() if s != "*")]
            for service in sorted(wanted) or known:
                yield policy_message(self._watcher, service)
            while True:
                item = await queue.get()
                if item is _CLOSED:
                    return
                for service in _affected(item, wanted, self._watcher.book.services()):  # type: ignore[arg-type]
                    yield policy_message(self._watcher, service)
        finally:
            self._streams.discard(queue)
            unsubscribe()


def _as_dict(policy: policy_pb2.Policy) -> dict[str, Any]:
    shown = json_format.MessageToDict(policy, preserving_proto_field_name=True)
    return {k: shown[k] for k in ("service", "overrides", "revision") if k in shown}


def _affected(changed: set[str], wanted: set[str], known: Iterable[str]) -> list[str]:
    if not wanted:
        return sorted(changed | (set(known) if ALL_SERVICES in changed else set()))
    if ALL_SERVICES in changed:
        return sorted(wanted)
    return sorted(changed & wanted)


def _service(request: policy_pb2.GetPolicyRequest | policy_pb2.SetPolicyRequest) -> str:
    return check_service(request.service)


def _peer(context: Context) -> str:
    """The caller's host, for a change whose caller did not say who it is: never the
    ephemeral port, which names no one (``ipv4:127.0.0.1:53422`` -> ``peer 127.0.0.1``)."""
    peer = context.peer() or "?"
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6"):
        host = urllib.parse.unquote(rest).rpartition(":")[0].strip("[]")
        return f"peer {host}"
    return f"peer {peer}"


async def _answer(context: Context, build: Callable[[], policy_pb2.Policy]) -> policy_pb2.Policy:
    try:
        return build()
    except PowerbusError as exc:
        await abort_with(context, exc)
        raise  # pragma: no cover
