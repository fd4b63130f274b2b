"""What a proxyless client keeps watching on the bus: the nodes (``Registry.Watch``) and
the policies (``Policies.WatchPolicies``).

Each feed is one long-lived server stream, opened again with back-off whenever it ends or
breaks (the bus restarted, another instance took over, the watcher fell behind); a
reopened stream starts with a full snapshot, which replaces what was known.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import random
from collections.abc import Callable

import grpc

from powerbus.bus.kernel.lifecycle import Lifecycle
from powerbus.bus.kernel.policy import ALL_SERVICES, ServicePolicy
from powerbus.load_balancer import Endpoint, Tier
from powerbus.policy.v1 import policy_pb2, policy_pb2_grpc
from powerbus.registry.v1 import registry_pb2, registry_pb2_grpc

__all__ = ["NodeFeed", "PolicyFeed"]

log = logging.getLogger(__name__)

_UP = registry_pb2.NODE_HEALTH_UP
_STANDBY = registry_pb2.PRIORITY_STANDBY


def endpoint_of(node: registry_pb2.Node) -> Endpoint:
    return Endpoint(
        node_id=node.node_id,
        address=node.address,
        weight=node.weight or 100,
        zone=node.zone,
        tier=Tier.STANDBY if node.priority == _STANDBY else Tier.PRIMARY,
    )


class _Feed(Lifecycle):
    """A server stream kept open: ``_follow`` reads it until it ends; then again."""

    name = "feed"

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._channel = channel
        self._task: asyncio.Task[None] | None = None
        self.synced = asyncio.Event()
        """Set once the first full snapshot has arrived."""

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._follow()
                failures = 0
            except grpc.aio.AioRpcError as exc:
                failures += 1
                if failures == 1:
                    log.warning("%s broke: %s %s", self.name, exc.code().name, exc.details())
            # Full jitter, 0.1 s doubling up to 2 s: many clients do not reconnect in step.
            await asyncio.sleep(random.uniform(0, min(2.0, 0.1 * 2 ** min(failures, 5))))

    @abc.abstractmethod
    async def _follow(self) -> None:
        """Read the stream until it ends or breaks; each subclass follows its own RPC."""


class NodeFeed(_Feed):
    """Live nodes by service, from ``Registry.Watch``; ``on_change(services)`` after each
    change (every service after a snapshot)."""

    name = "node feed"

    def __init__(
        self, channel: grpc.aio.Channel, *, on_change: Callable[[set[str] | None], None]
    ) -> None:
        super().__init__(channel)
        self._stub = registry_pb2_grpc.RegistryStub(channel)
        self._on_change = on_change
        self.nodes: dict[str, registry_pb2.Node] = {}

    def endpoints(self, service: str) -> list[Endpoint]:
        """The UP nodes serving ``service``."""
        return [
            endpoint_of(n)
            for _, n in sorted(self.nodes.items())
            if n.health == _UP and service in n.services
        ]

    async def _follow(self) -> None:
        snapshot: dict[str, registry_pb2.Node] = {}
        syncing = True
        Kind = registry_pb2.WatchEvent
        async for event in self._stub.Watch(registry_pb2.WatchRequest()):
            if event.kind == Kind.KIND_EXISTING:
                snapshot[event.node.node_id] = event.node
            elif event.kind == Kind.KIND_SYNCED:
                self.nodes, syncing = snapshot, False
                self.synced.set()
                self._on_change(None)
            elif not syncing:
                node = event.node
                before = self.nodes.get(node.node_id)
                if event.kind == Kind.KIND_REMOVED:
                    self.nodes.pop(node.node_id, None)
                else:
                    self.nodes[node.node_id] = node
                touched = set(node.services) | (set(before.services) if before else set())
                self._on_change(touched)


class PolicyFeed(_Feed):
    """Effective policies from the bus: per service, and ``"*"`` for everyone else."""

    name = "policy feed"

    def __init__(self, channel: grpc.aio.Channel, *, on_change: Callable[[set[str]], None]) -> None:
        super().__init__(channel)
        self._stub = policy_pb2_grpc.PoliciesStub(channel)
        self._on_change = on_change
        self._policies: dict[str, ServicePolicy] = {}

    def policy(self, service: str) -> ServicePolicy:
        found = self._policies.get(service) or self._policies.get(ALL_SERVICES)
        return found if found is not None else ServicePolicy()

    async def _follow(self) -> None:
        stream = self._stub.WatchPolicies(policy_pb2.WatchPoliciesRequest())
        first = True
        async for message in stream:
            try:
                policy = ServicePolicy.from_settings(dict(message.settings))
            except Exception as exc:  # a key this SDK does not know yet: keep the old one
                log.warning("policy of %s not understood: %s", message.service, exc)
                continue
            self._policies[message.service] = policy
            if first:
                first = False
                self.synced.set()
            self._on_change({message.service})
