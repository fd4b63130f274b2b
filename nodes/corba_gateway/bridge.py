"""Servants that forward every IDL operation to the bus as the matching gRPC call.

For each interface of the IDL a servant class is made at start-up: a subclass of the
stubs' POA skeleton with one method per operation, each an :class:`OperationBridge`.
A bridge converts the request struct to the proto message, calls
``/<package>.<Service>/<Method>`` through the bus with a deadline, converts the reply
back, and turns a failed status into the CORBA exception the errors table gives.

Streaming rpcs have the sequence shapes of the IDL: a server stream is collected into
the returned sequence, a client stream is sent from the ``requests`` sequence, and a
bidi stream does both (all requests go out, then every reply comes back in order).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import Message

from powerbus.adapters.corba.codec import IdlCodec
from powerbus.adapters.corba.errors import corba_exception_for_status
from powerbus.adapters.corba.schema import Interface, Operation
from powerbus.adapters.corba.stubs import Stubs, python_name
from powerbus.bus.kernel.calls import CallObserver, CallOrigin, CallRecord
from powerbus.bus.kernel.errors import PowerbusError
from powerbus.bus.transport.grpc_status import from_grpc, to_grpc
from powerbus.load_balancer import StatusCode
from powerbus.nodes.sdk.channel import CALLER_KEY

if TYPE_CHECKING:
    from powerbus.bus.kernel.otel import Tracing

__all__ = ["PEER_KEY", "OperationBridge", "corba_caller", "servant_class"]

PEER_KEY = "x-powerbus-corba-peer"
"""Metadata key carrying the CORBA caller's address to the node that serves the call."""


class OperationBridge:
    """Forwards one IDL operation to its rpc; called from omniORB's upcall threads."""

    def __init__(
        self,
        *,
        operation: Operation,
        codec: IdlCodec,
        channel: grpc.Channel,
        timeout: float,
        caller: str,
        traffic: CallObserver,
        user_exceptions: Mapping[str, type],
        tracing: Tracing | None = None,
    ) -> None:
        method = operation.method
        self.service = method.containing_service.full_name
        self.method = method.name
        self._request = codec.message(method.input_type)
        self._reply = codec.message(method.output_type)
        self._timeout = timeout
        self._caller = caller
        self._traffic = traffic
        self._user_exceptions = user_exceptions
        self._tracing = tracing
        path = self._path = f"/{self.service}/{self.method}"
        serialize = self._request.message_class.SerializeToString
        deserialize = self._reply.message_class.FromString
        shape = (method.client_streaming, method.server_streaming)
        self._call: Callable[..., Any]
        if shape == (False, False):
            self._call = channel.unary_unary(path, serialize, deserialize)
        elif shape == (False, True):
            self._call = channel.unary_stream(path, serialize, deserialize)
        elif shape == (True, False):
            self._call = channel.stream_unary(path, serialize, deserialize)
        else:
            self._call = channel.stream_stream(path, serialize, deserialize)
        self._streams_in, self._streams_out = shape

    def __call__(self, request: Any) -> Any:
        import omniORB

        started = time.perf_counter()
        info = omniORB.currentCallInfo()
        peer = str(info["peer_address"]) if info else ""
        code = StatusCode.UNKNOWN
        bytes_in = bytes_out = 0
        metadata: tuple[tuple[str, str | bytes], ...] = (
            (CALLER_KEY, self._caller),
            (PEER_KEY, peer),
        )
        # IIOP brings no trace context: each CORBA call starts a trace, sent on to the bus.
        span = None
        if self._tracing is not None:
            span = self._tracing.server_span(
                self._path, (), **{"powerbus.role": "corba-gateway", "powerbus.corba.peer": peer}
            )
            metadata = self._tracing.inject(metadata, span)
        try:
            if self._streams_in:
                messages = [self._request.to_proto(r) for r in request]
                bytes_in = sum(m.ByteSize() for m in messages)
                argument: Message | Iterable[Message] = iter(messages)
            else:
                argument = self._request.to_proto(request)
                bytes_in = argument.ByteSize()
            result = self._call(argument, timeout=self._timeout, metadata=metadata)
            if self._streams_out:
                replies = list(result)
                bytes_out = sum(r.ByteSize() for r in replies)
                converted: Any = [self._reply.to_idl(r) for r in replies]
            else:
                bytes_out = result.ByteSize()
                converted = self._reply.to_idl(result)
            code = StatusCode.OK
            return converted
        except grpc.RpcError as exc:
            status: grpc.StatusCode = exc.code()
            details: str = exc.details() or ""
            code = from_grpc(status)
            raise corba_exception_for_status(
                status, details, user_exceptions=self._user_exceptions
            ) from None
        except PowerbusError as exc:  # a value the other side cannot represent
            code = exc.status
            raise corba_exception_for_status(to_grpc(exc.status), exc.message) from None
        finally:
            if span is not None and self._tracing is not None:
                self._tracing.finish(span, code)
            self._traffic.call_finished(
                CallRecord(
                    service=self.service,
                    method=self.method,
                    node_id=self._caller,
                    caller=corba_caller(peer),
                    code=code,
                    latency_s=time.perf_counter() - started,
                    bytes_in=bytes_in,
                    bytes_out=bytes_out,
                    origin=CallOrigin.IIOP,
                )
            )


def corba_caller(peer: str) -> str:
    """The caller monitoring shows for a CORBA peer: its host, as the router names peers
    (the ephemeral port would make every connection a new caller).

    >>> corba_caller("giop:tcp:127.0.0.1:54830"), corba_caller("giop:tcp:[::1]:5000")
    ('iiop:127.0.0.1', 'iiop:::1')
    >>> corba_caller("giop:unix:/tmp/orb.sock"), corba_caller("")
    ('iiop:unix', 'iiop:local')
    """
    if not peer:
        return "iiop:local"
    transport, _, address = peer.removeprefix("giop:").partition(":")
    if transport != "tcp":
        return f"iiop:{transport}"
    host = address.rsplit(":", 1)[0] if ":" in address else address
    return f"iiop:{host.strip('[]')}"


def servant_class(
    interface: Interface, stubs: Stubs, bridges: Mapping[str, OperationBridge]
) -> type:
    """A servant class of ``interface`` whose operations call ``bridges`` (by IDL name)."""
    skeleton = stubs.skeleton(interface.scoped_name)
    methods: dict[str, Any] = {}
    for operation in interface.operations:
        methods[python_name(operation.name)] = _method(bridges[operation.name])
    methods["__doc__"] = f"Forwards {interface.scoped_name} to {interface.service.full_name}."
    return type(f"{getattr(skeleton, '__name__', 'Servant')}Bridge", (skeleton,), methods)


def _method(bridge: OperationBridge) -> Callable[[Any, Any], Any]:
    def operation(self: Any, request: Any) -> Any:
        return bridge(request)

    operation.__name__ = bridge.method
    return operation
