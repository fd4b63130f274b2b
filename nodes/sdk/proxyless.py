"""Proxyless calls: the SDK balances itself and calls nodes directly, no bus hop.

A :class:`ProxylessClient` watches the registry (``Registry.Watch``) and the policies
(``Policies.WatchPolicies``) on the bus, keeps one :class:`~powerbus.load_balancer.Balancer`
and :class:`~powerbus.load_balancer.CallExecutor` per service (the same code the router
runs, with the same policy), probes node health, and reports its traffic to the bus's
``TrafficReports`` so monitoring shows these calls like routed ones, as gRPC's proxyless
service mesh does.

Stubs are the ordinary generated ones::

    async with ProxylessClient(bus="127.0.0.1:50051", caller="billing-1") as client:
        await client.wait_for_nodes("powerbus.echo.v1.Echo", timeout=10)
        echo = client.stub(echo_pb2_grpc.EchoStub)
        reply = await echo.Echo(echo_pb2.EchoRequest(message="hi"), timeout=2)

Unary calls get the service's fault tolerance (retries where safe, hedging, modes) and,
to SDK nodes, travel the node link as the router's do (a frame on an open connection
instead of a gRPC call: cheaper at both ends); streaming calls go to one node picked per
call.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool

from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.calls import CallObserver, CallOrigin, CallRecord
from powerbus.bus.kernel.lifecycle import Lifecycle
from powerbus.bus.policy import ServicePolicy
from powerbus.bus.router.keys import AFFINITY_KEY, IDEMPOTENT_KEY, never_reached
from powerbus.bus.router.link import NodeLink, reply_status
from powerbus.bus.router.link_frames import LINK_MAX_BYTES
from powerbus.bus.router.probes import HealthProber
from powerbus.load_balancer import (
    Attempt,
    Balancer,
    CallExecutor,
    Endpoint,
    Outcome,
    PickRequest,
    Refusal,
)
from powerbus.nodes.sdk.channel import CALLER_KEY
from powerbus.nodes.sdk.feeds import NodeFeed, PolicyFeed
from powerbus.nodes.sdk.traffic import TrafficReporter

__all__ = ["ProxylessClient"]

S = TypeVar("S")
_IDEMPOTENT = (
    descriptor_pb2.MethodOptions.IDEMPOTENT,
    descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS,
)
# Node channels as the router's: keepalive finds dead nodes, no retries of grpc's own.
_NODE_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.enable_retries", 0),
)


class _Lane:
    __slots__ = ("balancer", "executor")

    def __init__(self, balancer: Balancer, executor: CallExecutor) -> None:
        self.balancer = balancer
        self.executor = executor


class ProxylessClient(Lifecycle):
    """Calls services straight at their nodes, balanced like the router would."""

    def __init__(
        self,
        *,
        bus: HostPort | str,
        caller: str,
        default_timeout: float = 10.0,
        zone: str = "",
        report_interval: float = 5.0,
        health_checks: bool = True,
        observer: CallObserver | None = None,
    ) -> None:
        self.bus = str(bus)
        self.caller = caller
        self.default_timeout = default_timeout
        self.zone = zone
        self._bus_channel: grpc.aio.Channel | None = None
        self._nodes: NodeFeed | None = None
        self._policies: PolicyFeed | None = None
        self._traffic: TrafficReporter | None = None
        self._prober: HealthProber | None = None
        self._report_interval = report_interval
        self._health_checks = health_checks
        self._extra_observer = observer
        self._lanes: dict[str, _Lane] = {}
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._callables: dict[tuple[str, str, str], Any] = {}
        self._links: dict[str, NodeLink] = {}
        self._changed = asyncio.Event()

    @property
    def traffic(self) -> TrafficReporter:
        if self._traffic is None:
            raise RuntimeError("proxyless client not started")
        return self._traffic

    async def start(self) -> None:
        if self._bus_channel is not None:
            return
        channel = self._bus_channel = grpc.aio.insecure_channel(self.bus)
        self._traffic = TrafficReporter(
            channel=channel, reporter=self.caller, interval=self._report_interval
        )
        self._nodes = NodeFeed(channel, on_change=self._nodes_changed)
        self._policies = PolicyFeed(channel, on_change=self._policies_changed)
        self._prober = HealthProber(
            balancers=lambda: [lane.balancer for lane in self._lanes.values()],
            channel_for=self._channel,
        )
        await self._traffic.start()
        await self._policies.start()
        await self._nodes.start()
        if self._health_checks:
            await self._prober.start()

    async def stop(self) -> None:
        """Stop watching, send the last traffic report, close every channel. Idempotent."""
        channel, self._bus_channel = self._bus_channel, None
        if channel is None:
            return
        for part in (self._prober, self._nodes, self._policies, self._traffic):
            if part is not None:
                await part.stop()
        links, self._links = list(self._links.values()), {}
        await asyncio.gather(*(link.close() for link in links), return_exceptions=True)
        channels, self._channels, self._callables = list(self._channels.values()), {}, {}
        await asyncio.gather(*(c.close() for c in channels), return_exceptions=True)
        await channel.close()

    async def wait_for_nodes(self, service: str, *, count: int = 1, timeout: float) -> None:
        """Wait until ``count`` nodes of ``service`` are in rotation here."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self._lane(service).balancer.rotation()) < count:
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"{count} node(s) of {service} not seen within {timeout}s")
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=min(left, 0.5))

    def balancer(self, service: str) -> Balancer:
        """The balancer of ``service`` (for operators and tests)."""
        return self._lane(service).balancer

    def stub(self, stub_type: Callable[[Any], S]) -> S:
        """A generated stub whose calls this client balances."""
        return stub_type(_BalancedChannel(self))

    # Keeping lanes current.

    def _lane(self, service: str) -> _Lane:
        lane = self._lanes.get(service)
        if lane is None:
            policy = self._policy(service)
            balancer = Balancer(service, settings=policy.balancer, local_zone=self.zone)
            lane = self._lanes[service] = _Lane(balancer, CallExecutor(balancer, policy.calls))
            if self._nodes is not None:
                balancer.update(self._nodes.endpoints(service))
            if self._prober is not None:
                self._prober.reconcile()
        return lane

    def _policy(self, service: str) -> ServicePolicy:
        return self._policies.policy(service) if self._policies else ServicePolicy()

    def _nodes_changed(self, services: set[str] | None) -> None:
        assert self._nodes is not None
        for name, lane in self._lanes.items():
            if services is None or name in services:
                lane.balancer.update(self._nodes.endpoints(name))
        if self._prober is not None:
            self._prober.reconcile()
        self._retire_unused()
        self._changed.set()

    def _retire_unused(self) -> None:
        """Close the channels and links of nodes no service here has any more."""
        in_use = {e.address for lane in self._lanes.values() for e in lane.balancer.members()}
        for address in [a for a in self._channels if a not in in_use]:
            channel = self._channels.pop(address)
            self._callables = {k: v for k, v in self._callables.items() if k[0] != address}
            _background(_retire(channel, self._links.pop(address, None)))

    def _policies_changed(self, services: set[str]) -> None:
        for name, lane in self._lanes.items():
            if "*" in services or name in services:
                policy = self._policy(name)
                lane.balancer.configure(policy.balancer)
                lane.executor.configure(policy.calls)
        self._changed.set()

    def _channel(self, address: str) -> grpc.aio.Channel:
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = grpc.aio.insecure_channel(
                address, options=_NODE_OPTIONS
            )
        return channel

    def _link(self, address: str) -> NodeLink:
        """The node link to ``address``, as the router has (unary calls as frames)."""
        link = self._links.get(address)
        if link is None:
            link = self._links[address] = NodeLink(self._channel(address), address)
        return link

    def _callable(self, address: str, path: str, shape: str, ser: Any, deser: Any) -> Any:
        key = (address, path, shape)
        found = self._callables.get(key)
        if found is None:
            factory = getattr(self._channel(address), shape)
            found = self._callables[key] = factory(
                path, request_serializer=ser, response_deserializer=deser
            )
        return found

    def _record(self, record: CallRecord) -> None:
        if self._traffic is not None:
            self._traffic.call_finished(record)
        if self._extra_observer is not None:
            self._extra_observer.call_finished(record)


class _BalancedChannel:
    """Enough of ``grpc.aio.Channel`` for generated stubs: each multi-callable balances."""

    def __init__(self, client: ProxylessClient) -> None:
        self._client = client

    def unary_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        **_: Any,
    ) -> _Unary:
        return _Unary(self._client, method, request_serializer, response_deserializer)

    def unary_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        **_: Any,
    ) -> _Stream:
        return _Stream(
            self._client, method, request_serializer, response_deserializer, "unary_stream"
        )

    def stream_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        **_: Any,
    ) -> _Stream:
        return _Stream(
            self._client, method, request_serializer, response_deserializer, "stream_unary"
        )

    def stream_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        **_: Any,
    ) -> _Stream:
        return _Stream(
            self._client, method, request_serializer, response_deserializer, "stream_stream"
        )


class _Method:
    def __init__(self, client: ProxylessClient, path: str, ser: Any, deser: Any) -> None:
        self.client = client
        self.path = path
        self.service, _, self.method = path.lstrip("/").rpartition("/")
        self.ser = ser
        self.deser = deser
        self.caller_only = ((CALLER_KEY, client.caller),)
        level = _idempotency(self.service, self.method)
        self.idempotent = level in _IDEMPOTENT
        self.side_effect_free = level == descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS

    def metadata(self, metadata: Any) -> tuple[tuple[str, str | bytes], ...]:
        pairs = tuple(metadata or ())
        if not any(k == CALLER_KEY for k, _ in pairs):
            pairs += ((CALLER_KEY, self.client.caller),)
        return pairs

    def record(self, node_id: str, code: str, latency: float, sent: int, got: int) -> None:
        self.client._record(
            CallRecord(
                service=self.service,
                method=self.method,
                node_id=node_id,
                caller=self.client.caller,
                code=code,
                latency_s=latency,
                bytes_in=sent,
                bytes_out=got,
                origin=CallOrigin.PROXYLESS,
            )
        )


class _Unary(_Method):
    def __call__(
        self, request: Any, *, timeout: float | None = None, metadata: Any = None, **_: Any
    ) -> Any:
        return self._call(request, timeout, metadata)

    async def _call(self, request: Any, timeout: float | None, metadata: Any) -> Any:
        lane = self.client._lane(self.service)
        key: str | None = None
        flagged = False
        if metadata:
            pairs = self.metadata(metadata)
            for k, v in pairs:
                if k == AFFINITY_KEY and isinstance(v, str):
                    key = v
                elif k == IDEMPOTENT_KEY and v in ("1", "true"):
                    flagged = True
        else:
            pairs = self.caller_only
        deadline = time.monotonic() + (self.client.default_timeout if timeout is None else timeout)
        size = request.ByteSize() if hasattr(request, "ByteSize") else 0

        async def send(endpoint: Endpoint, left: float | None) -> Attempt:
            link = self.client._link(endpoint.address)
            if link.usable():
                payload = self.ser(request) if self.ser is not None else request
                if len(payload) <= LINK_MAX_BYTES:
                    return await self._over(link, endpoint, payload, left, pairs)
            call = self.client._callable(
                endpoint.address, self.path, "unary_unary", self.ser, self.deser
            )
            started = time.perf_counter()
            code, got = "CANCELLED", 0
            try:
                reply = await call(request, timeout=left, metadata=pairs)
                code = "OK"
                got = reply.ByteSize() if hasattr(reply, "ByteSize") else 0
                return Attempt("OK", reply)
            except grpc.aio.AioRpcError as error:
                code = error.code().name
                return Attempt(code, error, reached=not never_reached(error))
            finally:
                self.record(endpoint.node_id, code, time.perf_counter() - started, size, got)

        result = await lane.executor.run(
            PickRequest(self.path, key),
            send,
            idempotent=self.idempotent or flagged,
            side_effect_free=self.side_effect_free,
            deadline=deadline,
        )
        if isinstance(result, Refusal):
            self.record("", "UNAVAILABLE", 0.0, size, 0)
            raise _error(grpc.StatusCode.UNAVAILABLE, result.message)
        if result.ok:
            return result.value
        error = result.value
        if isinstance(error, grpc.aio.AioRpcError):
            if result.note:
                raise _error(
                    error.code(),
                    f"{error.details()} [powerbus: {result.note}]",
                    error.trailing_metadata(),
                )
            raise error
        raise _error(grpc.StatusCode[result.code], f"no time left [powerbus: {result.note}]")

    async def _over(
        self,
        link: NodeLink,
        endpoint: Endpoint,
        payload: bytes,
        left: float | None,
        pairs: tuple[tuple[str, str | bytes], ...],
    ) -> Attempt:
        """One attempt on the node link: what the gRPC call would give, for less."""
        started = time.perf_counter()
        code, got = "CANCELLED", 0
        try:
            frame = await link.call(self.path, pairs, payload, left)
            status = reply_status(frame)
            code = status.name
            if status is grpc.StatusCode.OK:
                got = len(frame.payload)
                reply = self.deser(frame.payload) if self.deser is not None else frame.payload
                return Attempt("OK", reply)
            error = _error(status, frame.details, grpc.aio.Metadata(*frame.trailing))
            return Attempt(code, error, reached=frame.ran)
        finally:
            self.record(endpoint.node_id, code, time.perf_counter() - started, len(payload), got)


class _Stream(_Method):
    """A streaming call on one node, picked per call; reported when it ends."""

    def __init__(
        self, client: ProxylessClient, path: str, ser: Any, deser: Any, shape: str
    ) -> None:
        super().__init__(client, path, ser, deser)
        self.shape = shape

    def __call__(
        self, request: Any, *, timeout: float | None = None, metadata: Any = None, **_: Any
    ) -> Any:
        lane = self.client._lane(self.service)
        balancer = lane.balancer
        refusal = balancer.admit()
        endpoint = balancer.pick(PickRequest(self.path)) if refusal is None else None
        if endpoint is None:
            raise _error(grpc.StatusCode.UNAVAILABLE, (refusal or balancer.refusal()).message)
        call_on = self.client._callable(
            endpoint.address, self.path, self.shape, self.ser, self.deser
        )
        started = time.perf_counter()
        call = call_on(
            request,
            timeout=self.client.default_timeout if timeout is None else timeout,
            metadata=self.metadata(metadata),
        )

        async def finish(finished: Any) -> None:
            code = "CANCELLED" if finished.cancelled() else (await finished.code()).name
            latency = time.perf_counter() - started
            balancer.report(endpoint, Outcome(code == "OK", latency, code))
            self.record(endpoint.node_id, code, latency, 0, 0)

        call.add_done_callback(lambda finished: _background(finish(finished)))
        return call


_BACKGROUND: set[asyncio.Task[None]] = set()


def _background(work: Any) -> None:
    # A reference until it ends, or the task could be collected half-way.
    task = asyncio.ensure_future(work)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


async def _retire(channel: grpc.aio.Channel, link: NodeLink | None) -> None:
    if link is not None:
        await link.close()
    await channel.close(grace=30.0)  # calls still on it may finish


def _idempotency(service: str, method: str) -> int:
    try:
        found = descriptor_pool.Default().FindMethodByName(f"{service}.{method}")
    except KeyError:
        return descriptor_pb2.MethodOptions.IDEMPOTENCY_UNKNOWN
    return int(found.GetOptions().idempotency_level)


def _error(code: grpc.StatusCode, details: str, trailing: Any = None) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), trailing or grpc.aio.Metadata(), details=details
    )
