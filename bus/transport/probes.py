"""Active health checks: every node of every service asked ``grpc.health.v1.Health/Check``
on its own schedule (the service's ``health.*`` policy: interval ± jitter, timeout).

SERVING passes; NOT_SERVING (a node draining), SERVICE_UNKNOWN, a timeout or a broken
connection fails; UNIMPLEMENTED passes, since a node without the health service can only
be judged by its calls (gRFC A17). Results go to the service's balancer, which applies the
healthy and unhealthy thresholds. The router and the SDK's proxyless client both use it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from powerbus.bus.kernel.lifecycle import Lifecycle
from powerbus.load_balancer import Balancer

__all__ = ["HealthProber"]

log = logging.getLogger(__name__)

_SERVING = health_pb2.HealthCheckResponse.SERVING
_Key = tuple[str, str, str]  # service, node id, address


class HealthProber(Lifecycle):
    """One task per (service, node), started and stopped as membership changes.

    >>> # prober = HealthProber(balancers=lambda: [b1, b2], channel_for=pool.channel)
    >>> # async with prober: prober.reconcile()   # after each membership change
    """

    def __init__(
        self,
        *,
        balancers: Callable[[], Iterable[Balancer]],
        channel_for: Callable[[str], grpc.aio.Channel],
        rng: random.Random | None = None,
    ) -> None:
        self._balancers = balancers
        self._channel_for = channel_for
        self._rng = rng or random.Random()
        self._tasks: dict[_Key, asyncio.Task[None]] = {}
        self._running = False
        self.checks = 0
        """Checks made so far."""

    async def start(self) -> None:
        self._running = True
        self.reconcile()

    async def stop(self) -> None:
        self._running = False
        tasks, self._tasks = list(self._tasks.values()), {}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def reconcile(self) -> None:
        """Start checking new nodes and stop checking departed ones."""
        if not self._running:
            return
        wanted: dict[_Key, Balancer] = {}
        for balancer in self._balancers():
            if balancer.settings.health.enabled:
                for e in balancer.members():
                    wanted[(balancer.service, e.node_id, e.address)] = balancer
        for key in [k for k in self._tasks if k not in wanted]:
            self._tasks.pop(key).cancel()
        for key, balancer in wanted.items():
            if key not in self._tasks:
                name = f"health {key[0]} {key[1]}"
                self._tasks[key] = asyncio.create_task(self._probe(key, balancer), name=name)

    async def _probe(self, key: _Key, balancer: Balancer) -> None:
        service, node_id, address = key
        request = health_pb2.HealthCheckRequest(service=service)
        while True:
            health = balancer.settings.health
            spread = health.interval_s * health.jitter
            await asyncio.sleep(max(0.01, health.interval_s + self._rng.uniform(-spread, spread)))
            stub = health_pb2_grpc.HealthStub(self._channel_for(address))
            passed = await self._check(stub, request, health.timeout_s)
            self.checks += 1
            balancer.health_checked(node_id, passed=passed)

    @staticmethod
    async def _check(
        stub: health_pb2_grpc.HealthStub, request: health_pb2.HealthCheckRequest, timeout: float
    ) -> bool:
        try:
            reply = await stub.Check(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            return bool(exc.code() is grpc.StatusCode.UNIMPLEMENTED)
        return bool(reply.status == _SERVING)
