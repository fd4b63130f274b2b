"""One method's route, and one call along it: the node picked and how the call went.

Unary calls run through the service's :class:`~powerbus.load_balancer.CallExecutor`, so
they get the service's fault tolerance (retries where safe, hedging, forking, broadcast);
each attempt is one call to one node. Streaming calls go to one node, picked once.

Every attempt ends in the call observer (monitoring) and in the balancer's report,
however it ends, so balancers learn from latency and failures.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, NoReturn, cast

import grpc

from powerbus.bus.kernel.calls import CallObserver, CallRecord
from powerbus.bus.kernel.descriptors import Idempotency, MethodInfo
from powerbus.bus.kernel.errors import PowerbusError
from powerbus.bus.router.balancers import Balancers
from powerbus.bus.router.forwarding import Metadata, forwardable
from powerbus.bus.router.keys import AFFINITY_KEY, CALLER_KEY, IDEMPOTENT_KEY, never_reached
from powerbus.bus.router.link import NodeLink, reply_status
from powerbus.bus.router.link_frames import LINK_MAX_BYTES, Frame
from powerbus.bus.router.upstreams import UpstreamPool
from powerbus.load_balancer import Attempt, Endpoint, Outcome, PickRequest, Refusal

if TYPE_CHECKING:
    from powerbus.bus.router.forwarding import Context

__all__ = ["MethodRoute", "RoutedCall"]

_TRUE = frozenset({"1", "true", "yes"})


class RoutedCall:
    """A streaming call in flight. Forwarding fills in ``code`` and the byte counts."""

    __slots__ = (
        "bytes_in",
        "bytes_out",
        "caller",
        "code",
        "endpoint",
        "metadata",
        "node",
        "started",
    )

    def __init__(self, node: Any, endpoint: Endpoint, metadata: Metadata, caller: str) -> None:
        self.node = node
        """The multi-callable on the chosen node's channel."""
        self.endpoint = endpoint
        self.metadata = metadata
        self.caller = caller
        self.code = "OK"
        self.bytes_in = 0
        self.bytes_out = 0
        self.started = time.perf_counter()


class MethodRoute:
    """What the router knows of one method, built once; makes its calls."""

    def __init__(
        self,
        info: MethodInfo,
        *,
        balancers: Balancers,
        upstreams: UpstreamPool,
        observer: CallObserver,
    ) -> None:
        self.info = info
        self.service = info.service
        self._method = info.path.rpartition("/")[2]
        self._balancers = balancers
        self._upstreams = upstreams
        self._observer = observer
        self._idempotent = info.idempotency is not Idempotency.UNKNOWN
        self._side_effect_free = info.idempotency is Idempotency.NO_SIDE_EFFECTS

    async def unary(self, request: bytes, context: Context) -> bytes:
        """Forward a unary call under the service's fault tolerance."""
        lane = self._balancers.lane(self.service)
        if lane is None:
            await _abort(context, self._balancers.missing(self.service))
        metadata, key, caller, idempotent = _read(context)
        remaining = context.time_remaining()
        if remaining is None:
            timeout = lane.executor.policy.timeout_s
            deadline = time.monotonic() + timeout if timeout > 0 else None
        else:
            deadline = time.monotonic() + remaining
        send = _UnarySend(self, request, metadata, caller or _peer_host(context.peer()))
        result = await lane.executor.run(
            PickRequest(self.info.path, key),
            send,
            idempotent=self._idempotent or idempotent,
            side_effect_free=self._side_effect_free,
            deadline=deadline,
        )
        if isinstance(result, Refusal):
            self._record("", send.caller, "UNAVAILABLE", 0.0, len(request), 0)
            await context.abort(grpc.StatusCode.UNAVAILABLE, result.message)
        value = result.value
        if isinstance(value, Frame):  # over the node link
            if value.initial:
                await context.send_initial_metadata(value.initial)
            if value.trailing:
                context.set_trailing_metadata(value.trailing)
            if result.ok:
                return bytes(value.payload)
            note = f" [powerbus: {result.note}]" if result.note else ""
            await context.abort(
                reply_status(value),
                value.details + note,
                value.trailing,
            )
        if result.ok:
            reply, upstream = cast("tuple[bytes, Any]", value)
            initial = await upstream.initial_metadata()
            if initial:
                await context.send_initial_metadata(initial)
            trailing = await upstream.trailing_metadata()
            if trailing:
                context.set_trailing_metadata(tuple(trailing))
            return reply
        await _relay_failure(context, result)

    async def begin(self, context: Context) -> RoutedCall:
        """Pick a node for a streaming call, or end the call with the reason there is none."""
        metadata, key, caller, _idempotent = _read(context)
        try:
            endpoint = self._balancers.pick(self.service, PickRequest(self.info.path, key))
        except PowerbusError as error:
            await _abort(context, error)
        node = self._upstreams.callable(endpoint.address, self.info.path, self.info.kind.value)
        self._observer.call_started(self.service, self._method, endpoint.node_id)
        return RoutedCall(node, endpoint, metadata, caller or _peer_host(context.peer()))

    def finish(self, call: RoutedCall) -> None:
        latency = time.perf_counter() - call.started
        self._balancers.report(
            self.service, call.endpoint, Outcome(call.code == "OK", latency, call.code)
        )
        self._record(
            call.endpoint.node_id, call.caller, call.code, latency, call.bytes_in, call.bytes_out
        )

    def _record(
        self, node_id: str, caller: str, code: str, latency: float, sent: int, received: int
    ) -> None:
        self._observer.call_finished(
            CallRecord(
                service=self.service,
                method=self._method,
                node_id=node_id,
                caller=caller,
                code=code,
                latency_s=latency,
                bytes_in=sent,
                bytes_out=received,
            )
        )


class _UnarySend:
    """One attempt of a unary call on one node: what the executor's ``send`` does."""

    __slots__ = ("caller", "metadata", "request", "route")

    def __init__(self, route: MethodRoute, request: bytes, metadata: Metadata, caller: str) -> None:
        self.route = route
        self.request = request
        self.metadata = metadata
        self.caller = caller

    async def __call__(self, endpoint: Endpoint, timeout: float | None) -> Attempt:
        route = self.route
        if len(self.request) <= LINK_MAX_BYTES:
            link = route._upstreams.link(endpoint.address)
            if link.usable():
                return await self._over(link, endpoint, timeout)
        node = route._upstreams.callable(endpoint.address, route.info.path, "unary")
        route._observer.call_started(route.service, route._method, endpoint.node_id)
        started = time.perf_counter()
        upstream = node(self.request, timeout=timeout, metadata=self.metadata)
        code = "CANCELLED"
        received = 0
        try:
            reply: bytes = await upstream
            code = "OK"
            received = len(reply)
            return Attempt("OK", (reply, upstream))
        except grpc.aio.AioRpcError as error:
            code = error.code().name
            return Attempt(code, error, reached=not never_reached(error))
        finally:
            upstream.cancel()  # no-op once done; ends the node's call if ours was cancelled
            route._record(
                endpoint.node_id,
                self.caller,
                code,
                time.perf_counter() - started,
                len(self.request),
                received,
            )

    async def _over(self, link: NodeLink, endpoint: Endpoint, timeout: float | None) -> Attempt:
        """The attempt on the node link: one frame out, one back."""
        route = self.route
        route._observer.call_started(route.service, route._method, endpoint.node_id)
        started = time.perf_counter()
        code, received = "CANCELLED", 0
        try:
            reply = await link.call(route.info.path, self.metadata, self.request, timeout)
            code = reply_status(reply).name
            received = len(reply.payload)
            return Attempt(code, reply, reached=reply.ran)
        finally:
            route._record(
                endpoint.node_id,
                self.caller,
                code,
                time.perf_counter() - started,
                len(self.request),
                received,
            )


def _read(context: Context) -> tuple[Metadata, str | None, str, bool]:
    """Forwardable metadata, affinity key, caller and the idempotency flag of a call."""
    metadata = forwardable(context.invocation_metadata())
    key = caller = None
    idempotent = False
    for k, v in metadata:
        if k == AFFINITY_KEY:
            key = v
        elif k == CALLER_KEY:
            caller = v
        elif k == IDEMPOTENT_KEY:
            idempotent = isinstance(v, str) and v.strip().lower() in _TRUE
    return (
        metadata,
        key if isinstance(key, str) else None,
        caller if isinstance(caller, str) else "",
        idempotent,
    )


async def _abort(context: Context, error: PowerbusError) -> NoReturn:
    await context.abort(error.status, error.message)
    raise AssertionError("unreachable: abort raises")  # pragma: no cover


async def _relay_failure(context: Context, attempt: Attempt) -> NoReturn:
    error = attempt.value
    note = f" [powerbus: {attempt.note}]" if attempt.note else ""
    if isinstance(error, grpc.aio.AioRpcError):
        await context.abort(
            error.code(), (error.details() or "") + note, tuple(error.trailing_metadata() or ())
        )
    node = attempt.endpoint.node_id if attempt.endpoint else "?"
    await context.abort(grpc.StatusCode[attempt.code], f"no time left to call node {node}{note}")
    raise AssertionError("unreachable: abort raises")  # pragma: no cover


def _peer_host(peer: str | None) -> str:
    """``ipv4:127.0.0.1:5555`` → ``peer:127.0.0.1``; the port would make every call unique."""
    if not peer:
        return ""
    address = peer.partition(":")[2]
    host = (
        address.rpartition(":")[0]
        if address.count(":") == 1 or address.startswith("[")
        else address
    )
    return f"peer:{host.strip('[]')}"
