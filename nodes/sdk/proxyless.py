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
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from google.protobuf import descriptor_pool

from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.calls import CallObserver, CallOrigin, CallRecord
from powerbus.bus.kernel.descriptors import Idempotency, MethodInfo, MethodKind, idempotency_of
from powerbus.bus.kernel.lifecycle import Lifecycle
from powerbus.bus.kernel.metadata import CALLER_KEY
from powerbus.bus.kernel.policy import ServicePolicy
from powerbus.bus.kernel.tls import TlsFiles
from powerbus.bus.transport import (
    CallHeaders,
    HealthProber,
    Reply,
    UnaryCalls,
    UpstreamPool,
    from_grpc,
    read_headers,
    to_grpc,
)
from powerbus.load_balancer import Balancer, Lane, Outcome, PickRequest, StatusCode
from powerbus.nodes.sdk.feeds import NodeFeed, PolicyFeed
from powerbus.nodes.sdk.traffic import TrafficReporter

if TYPE_CHECKING:
    from powerbus.bus.kernel.otel import Tracing

__all__ = ["ProxylessClient"]

S = TypeVar("S")


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
        tracing: Tracing | None = None,
        tls: TlsFiles | None = None,
    ) -> None:
        self.bus = str(bus)
        # With TLS, the bus and every node are dialled with this certificate (mTLS).
        self._tls = tls
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
        self._lanes: dict[str, Lane] = {}
        self._pool = UpstreamPool(tls=tls)
        # With tracing, each unary call is a client span (child of the caller's active span)
        # and each attempt a child of it, sent to the node as ``traceparent``.
        self._calls = UnaryCalls(
            self._pool.transport, _Observers(self), CallOrigin.PROXYLESS, tracing=tracing
        )
        self._streams: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()

    @property
    def traffic(self) -> TrafficReporter:
        if self._traffic is None:
            raise RuntimeError("proxyless client not started")
        return self._traffic

    async def start(self) -> None:
        if self._bus_channel is not None:
            return
        channel = self._bus_channel = (
            grpc.aio.insecure_channel(self.bus)
            if self._tls is None
            else grpc.aio.secure_channel(self.bus, self._tls.channel_credentials())
        )
        self._traffic = TrafficReporter(
            channel=channel, reporter=self.caller, interval=self._report_interval
        )
        self._nodes = NodeFeed(channel, on_change=self._nodes_changed)
        self._policies = PolicyFeed(channel, on_change=self._policies_changed)
        self._prober = HealthProber(
            balancers=lambda: [lane.balancer for lane in self._lanes.values()],
            channel_for=self._pool.channel,
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
        for part in (self._prober, self._nodes, self._policies):
            if part is not None:
                await part.stop()
        # Streams still open are cut by closing their channels; their reports come first.
        await self._pool.close()
        await asyncio.gather(*self._streams, return_exceptions=True)
        if self._traffic is not None:
            await self._traffic.stop()
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

    def connected(self) -> set[str]:
        """Addresses of the nodes this client keeps connections to (a channel, and the node
        link on it once used)."""
        return self._pool.addresses()

    def stub(self, stub_type: Callable[[Any], S]) -> S:
        """A generated stub whose calls this client balances."""
        return stub_type(_BalancedChannel(self))

    # Keeping lanes current.

    def _lane(self, service: str) -> Lane:
        lane = self._lanes.get(service)
        if lane is None:
            policy = self._policy(service)
            lane = Lane(service, policy.balancer, policy.calls, local_zone=self.zone)
            self._lanes[service] = lane
            if self._nodes is not None:
                lane.balancer.update(self._nodes.endpoints(service))
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
        """Close the connections of nodes no service here has any more."""
        self._pool.retain(
            {e.address for lane in self._lanes.values() for e in lane.balancer.members()}
        )

    def _policies_changed(self, services: set[str]) -> None:
        for name, lane in self._lanes.items():
            if "*" in services or name in services:
                policy = self._policy(name)
                lane.configure(policy.balancer, policy.calls)
        self._changed.set()

    def _follow(self, stream: Any, finish: Callable[[Any], Any]) -> None:
        """Report a stream when it ends; the task is awaited by :meth:`stop`."""

        def done(finished: Any) -> None:
            task = asyncio.ensure_future(finish(finished))
            self._streams.add(task)
            task.add_done_callback(self._streams.discard)

        stream.add_done_callback(done)

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


class _Observers:
    """The client's observers: its traffic reporter and the one it was given."""

    def __init__(self, client: ProxylessClient) -> None:
        self._client = client

    def call_started(self, service: str, method: str, node_id: str) -> None:
        """Nothing to count: traffic reports carry finished calls only."""

    def call_finished(self, record: CallRecord) -> None:
        self._client._record(record)


class _Method:
    def __init__(self, client: ProxylessClient, path: str, ser: Any, deser: Any) -> None:
        self.client = client
        self.path = path
        self.service, _, self.method = path.lstrip("/").rpartition("/")
        self.ser = ser or _identity
        self.deser = deser or _identity
        self.caller_only = ((CALLER_KEY, client.caller),)

    def metadata(self, metadata: Any) -> tuple[tuple[str, str | bytes], ...]:
        if not metadata:
            return self.caller_only
        pairs = tuple(metadata)
        if not any(k == CALLER_KEY for k, _ in pairs):
            pairs += self.caller_only
        return pairs

    def record(self, node_id: str, code: StatusCode, latency: float) -> None:
        self.client._record(
            CallRecord(
                service=self.service,
                method=self.method,
                node_id=node_id,
                caller=self.client.caller,
                code=code,
                latency_s=latency,
                bytes_in=0,
                bytes_out=0,
                origin=CallOrigin.PROXYLESS,
            )
        )


class _Unary(_Method):
    """A unary method: the call path the router takes (:mod:`powerbus.bus.transport.unary`)."""

    def __init__(self, client: ProxylessClient, path: str, ser: Any, deser: Any) -> None:
        super().__init__(client, path, ser, deser)
        self.info = MethodInfo(path, self.service, MethodKind.UNARY, _idempotency(path))

    def __call__(
        self, request: Any, *, timeout: float | None = None, metadata: Any = None, **_: Any
    ) -> Any:
        return self._call(request, timeout, metadata)

    async def _call(self, request: Any, timeout: float | None, metadata: Any) -> Any:
        client = self.client
        if metadata:
            pairs = self.metadata(metadata)
            headers = read_headers(pairs)
            headers.caller = client.caller
        else:  # the common case: nothing to read
            pairs, headers = self.caller_only, CallHeaders(client.caller, None, False)
        deadline = time.monotonic() + (client.default_timeout if timeout is None else timeout)
        reply = await client._calls.run(
            client._lane(self.service),
            self.info,
            self.ser(request),
            pairs,
            headers,
            deadline=deadline,
        )
        if reply.ok:
            return self.deser(reply.payload)
        raise _error(reply)


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
        balancer = self.client._lane(self.service).balancer
        refusal = balancer.admit()
        endpoint = balancer.pick(PickRequest(self.path)) if refusal is None else None
        if endpoint is None:
            message = (refusal or balancer.refusal()).message
            raise _error(Reply(StatusCode.UNAVAILABLE, details=message, ran=False))
        call_on = self.client._pool.callable(
            endpoint.address, self.path, self.shape, self.ser, self.deser
        )
        started = time.perf_counter()
        call = call_on(
            request,
            timeout=self.client.default_timeout if timeout is None else timeout,
            metadata=self.metadata(metadata),
        )

        async def finish(finished: Any) -> None:
            if finished.cancelled():
                code = StatusCode.CANCELLED
            else:
                code = from_grpc(await finished.code())
            latency = time.perf_counter() - started
            balancer.report(endpoint, Outcome(code is StatusCode.OK, latency, code))
            self.record(endpoint.node_id, code, latency)

        self.client._follow(call, finish)
        return call


def _identity(value: Any) -> Any:
    return value


def _idempotency(path: str) -> Idempotency:
    """The method's ``idempotency_level``, from the generated code loaded in this process."""
    try:
        found = descriptor_pool.Default().FindMethodByName(path.lstrip("/").replace("/", "."))
    except KeyError:
        return Idempotency.UNKNOWN
    return idempotency_of(found.GetOptions())


def _error(reply: Reply) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        to_grpc(reply.code),
        grpc.aio.Metadata(*reply.initial),
        grpc.aio.Metadata(*reply.trailing),
        details=reply.details,
    )
