"""Keeping a node registered with the bus: register, heartbeat, re-register, deregister.

Registration is retried with backoff while the bus is unreachable (a node may start before
its bus). A heartbeat answered NOT_FOUND means the lease lapsed, so the node registers
again; other heartbeat failures are logged and the next tick tries again, because the
lease outlives a few missed beats. Every call carries a deadline.

A node that restarts before its old lease lapses gets its id back at once by proving it
is the instance now answering at its address: :class:`InstanceProof` keeps a random
secret per process, sends it with each RegisterRequest and serves its digest through
``powerbus.registry.v1.NodeInstance/Identify``, which the bus dials to check.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import grpc
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    wait_exponential,
    wait_random,
)

from powerbus.bus.kernel.errors import PowerbusError, Unavailable, error_from_status
from powerbus.bus.kernel.lifecycle import Lifecycle
from powerbus.bus.transport.grpc_status import from_grpc
from powerbus.registry.v1 import registry_pb2, registry_pb2_grpc

__all__ = ["InstanceProof", "Lease", "Registration"]

log = logging.getLogger(__name__)

# Worth retrying: the bus is down, slow, restarting, or an earlier instance of this node
# (killed without deregistering) still holds the id until its lease lapses.
_TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.ALREADY_EXISTS,
    }
)
_DEFAULT_INTERVAL = timedelta(seconds=3)
_MIN_INTERVAL = timedelta(milliseconds=50)


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """What the bus granted: renew it by heartbeat at least every ``heartbeat_interval``."""

    lease_id: str
    ttl: timedelta
    heartbeat_interval: timedelta

    @classmethod
    def from_response(cls, response: registry_pb2.RegisterResponse) -> Lease:
        ttl = response.lease_ttl.ToTimedelta()
        interval = response.heartbeat_interval.ToTimedelta()
        if interval <= timedelta(0):
            interval = ttl / 3 if ttl > timedelta(0) else _DEFAULT_INTERVAL
        return cls(
            lease_id=response.lease_id, ttl=ttl, heartbeat_interval=max(interval, _MIN_INTERVAL)
        )


class InstanceProof(registry_pb2_grpc.NodeInstanceServicer):
    """This process's proof of identity at its address, for the bus to check.

    >>> proof = InstanceProof("echo-1")
    >>> len(proof.secret), proof.digest == hashlib.sha256(proof.secret).digest()
    (32, True)
    >>> # registry_pb2_grpc.add_NodeInstanceServicer_to_server(proof, server)
    """

    def __init__(self, node_id: str) -> None:
        self._node_id = node_id
        self.secret = secrets.token_bytes(32)
        """Sent only to the bus, in RegisterRequest.instance_secret."""
        self.digest = hashlib.sha256(self.secret).digest()

    async def Identify(
        self, request: registry_pb2.IdentifyRequest, context: object
    ) -> registry_pb2.IdentifyResponse:
        return registry_pb2.IdentifyResponse(node_id=self._node_id, instance_digest=self.digest)


class Registration(Lifecycle):
    """The task that keeps one node registered.

    >>> async def main(channel, request, counter):
    ...     async with Registration(channel=channel, request=request, load=counter.snapshot) as r:
    ...         lease = await asyncio.wait_for(r.wait_registered(), timeout=30)
    """

    def __init__(
        self,
        *,
        channel: grpc.aio.Channel,
        request: registry_pb2.RegisterRequest,
        load: Callable[[], registry_pb2.Load],
        rpc_timeout: float = 5.0,
        on_registered: Callable[[Lease], None] | None = None,
    ) -> None:
        self._stub = registry_pb2_grpc.RegistryStub(channel)
        self._request = request
        self._load = load
        self._rpc_timeout = rpc_timeout
        self._on_registered = on_registered
        self._registered = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.lease: Lease | None = None
        self.registrations = 0
        """How many times the bus accepted a Register (re-registrations included)."""

    @property
    def node_id(self) -> str:
        return self._request.node_id

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"registration {self.node_id}")

    async def wait_registered(self) -> Lease:
        """The first lease; raises the registration's error if it gave up."""
        if self._task is None:
            raise RuntimeError("registration not started")
        waiter = asyncio.create_task(self._registered.wait())
        try:
            await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if self.lease is not None:
            return self.lease
        if self._task.done() and not self._task.cancelled() and self._task.exception():
            raise self._task.exception()  # type: ignore[misc]
        raise Unavailable(f"{self.node_id}: registration stopped before the bus accepted it")

    async def wait_done(self) -> None:
        """Wait until registration ends for good: it only does by failing (raised here) or
        being stopped."""
        task = self._task
        if task is None:
            return
        # asyncio.wait, unlike awaiting the task, leaves it running if we are cancelled.
        await asyncio.wait({task})
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]

    def failure(self) -> BaseException | None:
        """The error that ended registration for good, if any."""
        task = self._task
        if task is None or not task.done() or task.cancelled():
            return None
        return task.exception()

    async def stop(self, *, deregister: bool = True) -> None:
        """Stop heartbeating and, if registered, deregister. Idempotent; never raises."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        lease, self.lease = self.lease, None
        if deregister and lease is not None:
            await self._deregister(lease)

    async def _run(self) -> None:
        lease = await self._register()
        while True:
            await asyncio.sleep(lease.heartbeat_interval.total_seconds())
            lease = await self._heartbeat(lease)

    async def _register(self) -> Lease:
        retrying = AsyncRetrying(
            retry=retry_if_exception(_is_transient),
            # Jitter spreads the retries of nodes that lost the same bus at the same moment.
            wait=wait_exponential(multiplier=0.1, max=5.0) + wait_random(0, 0.2),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    response = await self._stub.Register(self._request, timeout=self._rpc_timeout)
        except grpc.aio.AioRpcError as exc:
            raise _mapped(exc) from exc
        lease = self.lease = Lease.from_response(response)
        self.registrations += 1
        log.info(
            "%s registered: lease %s, ttl %.1fs, heartbeat every %.2fs",
            self.node_id,
            lease.lease_id,
            lease.ttl.total_seconds(),
            lease.heartbeat_interval.total_seconds(),
        )
        self._registered.set()
        if self._on_registered is not None:
            self._on_registered(lease)
        return lease

    async def _heartbeat(self, lease: Lease) -> Lease:
        request = registry_pb2.HeartbeatRequest(
            node_id=self.node_id, lease_id=lease.lease_id, load=self._load()
        )
        timeout = min(self._rpc_timeout, max(lease.heartbeat_interval.total_seconds(), 0.5))
        try:
            await self._stub.Heartbeat(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                log.warning("%s: lease %s lapsed, registering again", self.node_id, lease.lease_id)
                self.lease = None
                return await self._register()
            log.warning("%s: heartbeat failed: %s %s", self.node_id, exc.code().name, exc.details())
        return lease

    async def _deregister(self, lease: Lease) -> None:
        request = registry_pb2.DeregisterRequest(node_id=self.node_id, lease_id=lease.lease_id)
        try:
            await self._stub.Deregister(request, timeout=min(self._rpc_timeout, 2.0))
        except grpc.aio.AioRpcError as exc:
            log.warning(
                "%s: deregister failed: %s %s", self.node_id, exc.code().name, exc.details()
            )
        else:
            log.info("%s deregistered", self.node_id)

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        detail = (
            f"{exc.code().name} {exc.details()}" if isinstance(exc, grpc.aio.AioRpcError) else exc
        )
        log.warning(
            "%s: register attempt %d failed (%s); retrying in %.2fs",
            self.node_id,
            state.attempt_number,
            detail,
            state.upcoming_sleep,
        )


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in _TRANSIENT


def _mapped(exc: grpc.aio.AioRpcError) -> PowerbusError:
    return error_from_status(from_grpc(exc.code()), exc.details() or "")
