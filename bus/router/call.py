"""One method's route, and one call along it: the node picked and how the call went.

Unary calls take the call path the SDK's proxyless client takes too
(:mod:`powerbus.bus.transport.unary`): the service's fault tolerance, each attempt one call
to one node, recorded once. Streaming calls go to one node, picked once.

Every attempt ends in the call observer (monitoring) and in the balancer's report,
however it ends, so balancers learn from latency and failures.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from powerbus.bus.kernel.access_rules import Right
from powerbus.bus.kernel.calls import CallRecord
from powerbus.bus.kernel.descriptors import MethodInfo, MethodKind
from powerbus.bus.kernel.errors import PowerbusError, ResourceExhausted
from powerbus.bus.kernel.identity import Identity
from powerbus.bus.kernel.masking import scrub
from powerbus.bus.kernel.metadata import IDENTITY_KEY
from powerbus.bus.kernel.peers import peer_host
from powerbus.bus.router.balancers import Balancers
from powerbus.bus.router.forwarding import Metadata, forwardable
from powerbus.bus.router.in_flight import BytesInFlight
from powerbus.bus.transport.grpc_status import abort_with, to_grpc
from powerbus.bus.transport.pool import UpstreamPool
from powerbus.bus.transport.unary import UnaryCalls, read_headers
from powerbus.load_balancer import Endpoint, Outcome, PickRequest, StatusCode

if TYPE_CHECKING:
    from powerbus.bus.access.control import AccessControl
    from powerbus.bus.kernel.otel import Span
    from powerbus.bus.router.forwarding import Context

__all__ = ["MethodRoute", "RoutedCall"]

_SHAPES = {
    MethodKind.UNARY: "unary_unary",
    MethodKind.SERVER_STREAM: "unary_stream",
    MethodKind.CLIENT_STREAM: "stream_unary",
    MethodKind.BIDI_STREAM: "stream_stream",
}


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
        "span",
        "started",
    )

    def __init__(self, node: Any, endpoint: Endpoint, metadata: Metadata, caller: str) -> None:
        self.node = node
        """The multi-callable on the chosen node's channel."""
        self.endpoint = endpoint
        self.metadata = metadata
        self.caller = caller
        self.code = StatusCode.OK
        """Set by forwarding."""
        self.bytes_in = 0
        self.bytes_out = 0
        self.started = time.perf_counter()
        self.span: Span | None = None
        """The call's span, when the bus traces."""


class MethodRoute:
    """What the router knows of one method, built once; makes its calls."""

    def __init__(
        self,
        info: MethodInfo,
        *,
        balancers: Balancers,
        upstreams: UpstreamPool,
        calls: UnaryCalls,
        in_flight: BytesInFlight,
        access: AccessControl | None = None,
    ) -> None:
        self.info = info
        # Only when rules are on: the development mode's call path stays as it was.
        self._access = access if access is not None and access.enabled else None
        self._target = info.path.lstrip("/")
        self._in_flight = in_flight
        self.service = info.service
        self._method = info.path.rpartition("/")[2]
        self._balancers = balancers
        self._upstreams = upstreams
        self._calls = calls

    async def unary(self, request: bytes, context: Context) -> bytes:
        """Forward a unary call under the service's fault tolerance."""
        metadata = forwardable(context.invocation_metadata())
        if self._access is not None:
            who = await self._access.require(context, Right.CALL, self._target)
            metadata = _stamped(metadata, who)
        lane = self._balancers.lane(self.service)
        if lane is None:
            await abort_with(context, self._balancers.missing(self.service))
        headers = read_headers(metadata)
        headers.caller = headers.caller or _peer_host(context.peer())
        remaining = context.time_remaining()
        if remaining is None:
            timeout = lane.executor.policy.timeout_s
            deadline = time.monotonic() + timeout if timeout > 0 else None
        else:
            deadline = time.monotonic() + remaining
        size = len(request)
        try:
            self._in_flight.take(size)
        except ResourceExhausted as error:
            await abort_with(context, error)
        try:
            reply = await self._calls.run(
                lane, self.info, request, metadata, headers, deadline=deadline
            )
        finally:
            self._in_flight.release(size)
        if reply.initial:
            await context.send_initial_metadata(reply.initial)
        if reply.trailing:
            context.set_trailing_metadata(reply.trailing)
        if reply.ok:
            return reply.payload
        # A node's details may quote the request (a phone searched for): shown masked.
        await context.abort(to_grpc(reply.code), scrub(reply.details), reply.trailing)
        raise AssertionError("unreachable: abort raises")  # pragma: no cover

    async def begin(self, context: Context) -> RoutedCall:
        """Pick a node for a streaming call, or end the call with the reason there is none."""
        metadata = forwardable(context.invocation_metadata())
        if self._access is not None:
            who = await self._access.require(context, Right.CALL, self._target)
            metadata = _stamped(metadata, who)
        headers = read_headers(metadata)
        try:
            endpoint = self._balancers.pick(self.service, PickRequest(self.info.path, headers.key))
        except PowerbusError as error:
            await abort_with(context, error)
        node = self._upstreams.callable(endpoint.address, self.info.path, _SHAPES[self.info.kind])
        self._calls.observer.call_started(self.service, self._method, endpoint.node_id)
        caller = headers.caller or _peer_host(context.peer())
        tracing = self._calls.tracing
        if tracing is None:
            return RoutedCall(node, endpoint, metadata, caller)
        # A stream goes to one node: the bus's span is the one the node continues.
        span = tracing.server_span(
            self.info.path, metadata, **{"powerbus.role": "bus", "powerbus.node": endpoint.node_id}
        )
        call = RoutedCall(node, endpoint, tracing.inject(metadata, span), caller)
        call.span = span
        return call

    def finish(self, call: RoutedCall) -> None:
        latency = time.perf_counter() - call.started
        code = call.code
        tracing = self._calls.tracing
        if call.span is not None and tracing is not None:
            tracing.finish(call.span, code)
        outcome = Outcome(code is StatusCode.OK, latency, code)
        self._balancers.report(self.service, call.endpoint, outcome)
        self._calls.observer.call_finished(
            CallRecord(
                service=self.service,
                method=self._method,
                node_id=call.endpoint.node_id,
                caller=call.caller,
                code=code,
                latency_s=latency,
                bytes_in=call.bytes_in,
                bytes_out=call.bytes_out,
            )
        )


def _stamped(metadata: Metadata, who: Identity) -> Metadata:
    """``metadata`` telling the node who the caller proved to be (nothing if anonymous)."""
    return (*metadata, (IDENTITY_KEY, who.name)) if who.name else metadata


def _peer_host(peer: str | None) -> str:
    """``ipv4:127.0.0.1:5555`` → ``peer:127.0.0.1``; the port would make every call unique."""
    return f"peer:{peer_host(peer)}" if peer else ""
