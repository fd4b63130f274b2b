"""The one unary call path, shared by the bus router and the SDK's proxyless client.

A call runs through its service's :class:`~powerbus.load_balancer.CallExecutor` (the
service breaker, picks, retries where safe, hedging, modes); each attempt goes to the
picked node's :class:`~powerbus.bus.transport.reply.Transport` and is told to the call
observer exactly once, however it ends, once the call has ended: the attempt whose reply
the call returns is its ``last``; the others (retried, or hedges that lost) are attempts
only, so monitoring counts calls and attempts apart. What comes back is always a
:class:`~powerbus.bus.transport.reply.Reply`: the router relays it to its caller, the
proxyless client turns it into a message or an ``AioRpcError``. Both travel this code,
so the two cannot drift apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from powerbus.bus.kernel.calls import CallObserver, CallOrigin, CallRecord
from powerbus.bus.kernel.descriptors import Idempotency, MethodInfo
from powerbus.bus.kernel.metadata import (
    AFFINITY_KEY,
    CALLER_KEY,
    IDEMPOTENT_KEY,
    asserts_idempotent,
)
from powerbus.bus.transport.reply import Metadata, Reply, Transport
from powerbus.load_balancer import Attempt, Endpoint, Lane, PickRequest, Refusal, StatusCode

if TYPE_CHECKING:
    from powerbus.bus.kernel.otel import Span, Tracing

__all__ = ["CallHeaders", "UnaryCalls", "read_headers"]


class CallHeaders:
    """What the call contract's metadata says of one call."""

    __slots__ = ("caller", "idempotent", "key")

    def __init__(self, caller: str, key: str | None, idempotent: bool) -> None:
        self.caller = caller
        self.key = key
        self.idempotent = idempotent


def read_headers(metadata: Metadata) -> CallHeaders:
    """Caller, affinity key and the idempotency assertion from a call's metadata.

    >>> h = read_headers((("x-powerbus-key", "m-1"), ("x-powerbus-idempotent", " True")))
    >>> (h.key, h.idempotent, h.caller)
    ('m-1', True, '')
    """
    caller, key, idempotent = "", None, False
    for k, v in metadata:
        if k == AFFINITY_KEY:
            key = v if isinstance(v, str) else None
        elif k == CALLER_KEY:
            caller = v if isinstance(v, str) else ""
        elif k == IDEMPOTENT_KEY:
            idempotent = asserts_idempotent(v)
    return CallHeaders(caller, key, idempotent)


class UnaryCalls:
    """Makes unary calls to nodes under their service's fault tolerance.

    >>> # calls = UnaryCalls(pool.transport, observer, CallOrigin.ROUTED)
    >>> # reply = await calls.run(lane, info, payload, metadata, headers, deadline=...)
    """

    def __init__(
        self,
        transports: Callable[[str], Transport],
        observer: CallObserver,
        origin: CallOrigin,
        *,
        tracing: Tracing | None = None,
    ) -> None:
        self.transports = transports
        self.observer = observer
        self.origin = origin
        self.tracing = tracing
        # Chosen once, so an untraced call pays not even a test for tracing (nor a frame).
        self.run = self._run if tracing is None else self._traced  # type: ignore[method-assign]

    async def _traced(
        self,
        lane: Lane,
        info: MethodInfo,
        payload: bytes,
        metadata: Metadata,
        headers: CallHeaders,
        *,
        deadline: float | None,
    ) -> Reply:
        """:meth:`run` in a span: the router's continues the caller's trace, the proxyless
        client's is a child of the span active in the caller's task; each attempt is a
        child span whose context the node receives as ``traceparent``."""
        tracing = self.tracing
        assert tracing is not None
        if self.origin is CallOrigin.ROUTED:
            span = tracing.server_span(info.path, metadata, **{"powerbus.role": "bus"})
        else:
            span = tracing.client_span(
                info.path.lstrip("/"), info.path, **{"powerbus.role": str(self.origin)}
            )
        try:
            with tracing.active(span):
                reply = await self._run(
                    lane, info, payload, metadata, headers, deadline=deadline, span=span
                )
        except BaseException:
            tracing.finish(span, StatusCode.CANCELLED)
            raise
        tracing.finish(span, reply.code, reply.details)
        return reply

    async def run(
        self,
        lane: Lane,
        info: MethodInfo,
        payload: bytes,
        metadata: Metadata,
        headers: CallHeaders,
        *,
        deadline: float | None,
    ) -> Reply:
        """Make the call; the reply of its last attempt, or one saying why none was made.

        (Replaced by ``_run`` or ``_traced`` on each instance.)"""
        return await self._run(lane, info, payload, metadata, headers, deadline=deadline)

    async def _run(
        self,
        lane: Lane,
        info: MethodInfo,
        payload: bytes,
        metadata: Metadata,
        headers: CallHeaders,
        *,
        deadline: float | None,
        span: Span | None = None,
    ) -> Reply:
        attempt = _Attempt(self, info, payload, metadata, headers.caller, span)
        try:
            result = await lane.executor.run(
                PickRequest(info.path, headers.key),
                attempt if span is None else attempt.traced,
                idempotent=headers.idempotent or info.idempotency is not Idempotency.UNKNOWN,
                side_effect_free=info.idempotency is Idempotency.NO_SIDE_EFFECTS,
                deadline=deadline,
            )
        except BaseException:
            attempt.end(None)
            raise
        if isinstance(result, Refusal):
            attempt.record("", StatusCode.UNAVAILABLE, 0.0, 0, reached=False, reply=None)
            attempt.end(None)
            return Reply(StatusCode.UNAVAILABLE, details=result.message, ran=False)
        reply = result.value
        attempt.end(reply if isinstance(reply, Reply) else None)
        note = f" [powerbus: {result.note}]" if result.note else ""
        if not isinstance(reply, Reply):  # the deadline passed before an attempt was made
            node = result.endpoint.node_id if result.endpoint else "?"
            return Reply(result.code, details=f"no time left to call node {node}{note}")
        if note:
            reply.details += note
        return reply


class _Attempt:
    """One call's ``send`` for the executor: one attempt on one node, recorded once."""

    __slots__ = (
        "caller",
        "calls",
        "done",
        "info",
        "metadata",
        "method",
        "payload",
        "span",
        "tried",
    )

    def __init__(
        self,
        calls: UnaryCalls,
        info: MethodInfo,
        payload: bytes,
        metadata: Metadata,
        caller: str,
        span: Span | None,
    ) -> None:
        self.calls = calls
        self.info = info
        self.method = info.path.rpartition("/")[2]
        self.payload = payload
        self.metadata = metadata
        self.caller = caller
        # (node, code, latency, bytes received, reached, reply) of each attempt so far.
        self.tried: list[tuple[str, StatusCode, float, int, bool, Reply | None]] = []
        self.done = False
        self.span = span
        """The call's span when traced: each attempt is a child of it."""

    async def traced(self, endpoint: Endpoint, timeout: float | None) -> Attempt:
        """The attempt in a child span of the call's, the node told of it (``traceparent``)."""
        tracing = self.calls.tracing
        assert tracing is not None and self.span is not None
        extra: dict[str, str | int] = {
            "powerbus.node": endpoint.node_id,
            "powerbus.attempt": len(self.tried) + 1,
        }
        span = tracing.child_span(self.span, f"attempt {endpoint.node_id}", self.info.path, **extra)
        try:
            attempt = await self(endpoint, timeout, tracing.inject(self.metadata, span))
        except BaseException:
            tracing.finish(span, StatusCode.CANCELLED)
            raise
        reply = attempt.value
        if isinstance(reply, Reply):
            tracing.finish(span, reply.code, reply.details)
        else:
            tracing.finish(span, attempt.code)
        return attempt

    async def __call__(
        self, endpoint: Endpoint, timeout: float | None, metadata: Metadata | None = None
    ) -> Attempt:
        calls = self.calls
        calls.observer.call_started(self.info.service, self.method, endpoint.node_id)
        started = time.perf_counter()
        code, received, reply = StatusCode.CANCELLED, 0, None
        try:
            transport = calls.transports(endpoint.address)
            reply = await transport.call(
                self.info.path,
                self.metadata if metadata is None else metadata,
                self.payload,
                timeout,
            )
            code, received = reply.code, len(reply.payload)
            return Attempt(code, reply, reached=reply.ran)
        finally:
            latency = time.perf_counter() - started
            reached = reply is None or reply.ran
            self.record(endpoint.node_id, code, latency, received, reached=reached, reply=reply)

    def record(
        self,
        node_id: str,
        code: StatusCode,
        latency: float,
        received: int,
        *,
        reached: bool,
        reply: Reply | None,
    ) -> None:
        """Keep one attempt until the call ends; told at once (as an attempt) after it."""
        self.tried.append((node_id, code, latency, received, reached, reply))
        if self.done:  # a hedge that finished after its call
            self._tell(self.tried.pop(), last=False)

    def end(self, last: Reply | None) -> None:
        """The call ended with ``last``: tell the observer of every attempt, the one that
        gave ``last`` (else the latest, when no attempt's reply was returned) as the call's."""
        tried, self.tried = self.tried, []
        self.done = True
        final = len(tried) - 1
        if last is not None:
            final = next((i for i, t in enumerate(tried) if t[5] is last), final)
        for i, attempt in enumerate(tried):
            self._tell(attempt, last=i == final)

    def _tell(
        self, attempt: tuple[str, StatusCode, float, int, bool, Reply | None], *, last: bool
    ) -> None:
        node_id, code, latency, received, reached, _reply = attempt
        self.calls.observer.call_finished(
            CallRecord(
                service=self.info.service,
                method=self.method,
                node_id=node_id,
                caller=self.caller,
                code=code,
                latency_s=latency,
                bytes_in=len(self.payload),
                bytes_out=received,
                origin=self.calls.origin,
                reached=reached,
                last=last,
            )
        )
