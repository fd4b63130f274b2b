"""The router: any ``/pkg.Service/Method`` the bus does not serve itself goes to a node.

It is a generic gRPC handler registered after the bus's own services. For each method
path it builds (once) a handler of the right call shape, from the schema registry; the
call path is then one dict look-up, one pick and one forwarded call. Only methods the
schema knows are cached: a refusal for an unknown path is built per call, so a client
calling endless made-up paths cannot grow the cache (and the bus's memory).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc

from powerbus.bus.kernel.calls import CallObserver, CallOrigin, NullObserver
from powerbus.bus.kernel.descriptors import MethodInfo, MethodKind
from powerbus.bus.kernel.errors import PowerbusError, Unimplemented
from powerbus.bus.router.balancers import Balancers
from powerbus.bus.router.call import MethodRoute
from powerbus.bus.router.forwarding import forward_to_reply, forward_to_reply_stream
from powerbus.bus.router.in_flight import BytesInFlight
from powerbus.bus.schema import SchemaRegistry
from powerbus.bus.transport.grpc_status import abort_with
from powerbus.bus.transport.pool import UpstreamPool
from powerbus.bus.transport.unary import UnaryCalls

__all__ = ["Router"]

if TYPE_CHECKING:
    from powerbus.bus.access.control import AccessControl
    from powerbus.bus.kernel.otel import Tracing
    from powerbus.bus.router.forwarding import Context

    Handler = grpc.RpcMethodHandler[bytes, bytes]


class Router(grpc.GenericRpcHandler):
    """Routes calls for registered services to their nodes.

    >>> # server.add_generic_rpc_handlers((Router(schema=..., balancers=...),))
    """

    def __init__(
        self,
        *,
        schema: SchemaRegistry,
        balancers: Balancers,
        upstreams: UpstreamPool,
        observer: CallObserver | None = None,
        tracing: Tracing | None = None,
        in_flight: BytesInFlight | None = None,
        access: AccessControl | None = None,
    ) -> None:
        self._schema = schema
        self._access = access
        self.in_flight = in_flight or BytesInFlight()
        self._balancers = balancers
        self._upstreams = upstreams
        self._calls = UnaryCalls(
            upstreams.transport, observer or NullObserver(), CallOrigin.ROUTED, tracing=tracing
        )
        self._handlers: dict[str, Handler] = {}

    def schema_changed(self) -> None:
        """Forget built handlers; the next call of each method builds it anew."""
        self._handlers = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Handler:
        path: str = handler_call_details.method
        handler = self._handlers.get(path)
        if handler is None:
            info = self._schema.method(path)
            if info is None:  # never cached: the paths are the caller's to invent
                return _refusal(self._explain_unknown(path))
            handler = self._build(info)
            self._handlers[path] = handler
        return handler

    @property
    def cached_handlers(self) -> int:
        """How many built handlers the router holds (one per known method called)."""
        return len(self._handlers)

    def _build(self, info: MethodInfo) -> Handler:
        route = MethodRoute(
            info,
            balancers=self._balancers,
            upstreams=self._upstreams,
            calls=self._calls,
            in_flight=self.in_flight,
            access=self._access,
        )
        if info.kind is MethodKind.UNARY:
            return grpc.unary_unary_rpc_method_handler(route.unary)
        begin, finish = route.begin, route.finish
        if info.kind is MethodKind.CLIENT_STREAM:

            async def to_reply(request: Any, context: Context) -> bytes:
                call = await begin(context)
                try:
                    return await forward_to_reply(call, request, context)
                finally:
                    finish(call)

            return grpc.stream_unary_rpc_method_handler(to_reply)

        async def to_reply_stream(request: Any, context: Context) -> AsyncIterator[bytes]:
            call = await begin(context)
            try:
                async for reply in forward_to_reply_stream(call, request, context):
                    yield reply
            finally:
                finish(call)

        if info.kind is MethodKind.SERVER_STREAM:
            return grpc.unary_stream_rpc_method_handler(to_reply_stream)
        return grpc.stream_stream_rpc_method_handler(to_reply_stream)

    def _explain_unknown(self, path: str) -> PowerbusError:
        service, _, method = path.lstrip("/").rpartition("/")
        if not service or not method:
            return Unimplemented(f"malformed method path {path!r}")
        if self._schema.has_service(service):
            return Unimplemented(f"service {service} has no method {method}")
        return Unimplemented(f"no node has registered service {service}")


def _refusal(error: PowerbusError) -> Handler:
    # A stream-stream handler answers any call shape without reading a request first.
    async def refuse(_requests: AsyncIterator[bytes], context: Context) -> None:
        await abort_with(context, error)

    return grpc.stream_stream_rpc_method_handler(refuse)
