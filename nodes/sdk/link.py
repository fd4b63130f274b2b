"""The node's end of the link: unary calls from the bus as frames on a TCP connection.

:class:`LinkService` listens for the link on an ephemeral port beside the node's gRPC
port, and answers ``/powerbus.link.v1.Link/Where`` on the gRPC port with that port and a
token the bus must present first. Each call frame runs the node's handler for the method
(found from the service descriptors, as the generated code would register it) through
the same middleware chain as gRPC calls (:mod:`powerbus.nodes.sdk.middleware`), with a
:class:`LinkContext` that offers what handlers use: the call's metadata, the peer, the time
left, ``abort``, codes, details and both sets of metadata.

Draining: once :meth:`LinkService.drain` is called (the node deregistered), new call
frames are refused as never run, so the bus retries them elsewhere; calls under way
finish, then the node says goaway and the bus closes each connection once its calls are
answered, before the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import ssl as _ssl
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

import grpc
from google.protobuf.message_factory import GetMessageClass

from powerbus.bus.kernel.errors import InvalidArgument
from powerbus.bus.kernel.identity import SPIFFE_PREFIX, name_from_certificate
from powerbus.bus.kernel.limits import DEFAULT_MAX_REQUEST_BYTES, link_message_limit
from powerbus.bus.transport.frames import (
    CALL,
    CANCEL,
    HELLO,
    TOKEN_BYTES,
    WHERE_PATH,
    Frame,
    FrameWriter,
    MessageReader,
    encode_goaway,
    encode_hello,
    encode_reply,
    encode_where,
)
from powerbus.bus.transport.grpc_status import abort_with
from powerbus.nodes.sdk.decoding import decode_request
from powerbus.nodes.sdk.middleware import Middleware, call_through
from powerbus.nodes.sdk.node import Node

__all__ = ["LinkContext", "LinkService"]

log = logging.getLogger(__name__)

_OK = grpc.StatusCode.OK.value[0]
_UNAVAILABLE = grpc.StatusCode.UNAVAILABLE.value[0]
_Pairs = tuple[tuple[str, str | bytes], ...]
_GOAWAY_WAIT_S = 1.0


class _Abort(Exception):
    """Raised by :meth:`LinkContext.abort`, as grpc's own AbortError is."""


class LinkContext:
    """The context of a call that came over the link: the part of
    ``grpc.aio.ServicerContext`` that handlers and middleware use, with the call's own
    metadata, peer and deadline."""

    def __init__(
        self,
        metadata: _Pairs,
        timeout: float | None,
        peer: str,
        auth: Mapping[str, Sequence[bytes]] | None = None,
    ) -> None:
        self._metadata = metadata
        self._auth = auth or {}
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._peer = peer
        self._code: grpc.StatusCode | None = None
        self._details = ""
        self.initial: _Pairs = ()
        self.trailing: _Pairs = ()

    def invocation_metadata(self) -> _Pairs:
        return self._metadata

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    def peer(self) -> str:
        return self._peer

    def auth_context(self) -> Mapping[str, Sequence[bytes]]:
        """What the connection proved, in grpc's own shape (TLS: the peer certificate's
        identity), so :func:`~powerbus.bus.kernel.identity.identity_of` reads both alike."""
        return self._auth

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Sequence[Any] = ()
    ) -> NoReturn:
        self._code, self._details = code, details
        if trailing_metadata:
            self.trailing = tuple(trailing_metadata)
        raise _Abort(details)

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def set_details(self, details: str) -> None:
        self._details = details

    def details(self) -> str:
        return self._details

    def set_trailing_metadata(self, metadata: Sequence[Any]) -> None:
        self.trailing = tuple(metadata)

    def trailing_metadata(self) -> _Pairs:
        return self.trailing

    async def send_initial_metadata(self, metadata: Sequence[Any]) -> None:
        self.initial = tuple(metadata)

    def cancelled(self) -> bool:
        return False

    def done(self) -> bool:
        return False


class _Method:
    """One unary method the link serves: the node's handler and the message codecs."""

    __slots__ = ("deserialize", "handler", "serialize")

    def __init__(self, handler: Callable[[Any, Any], Any], request: Any, reply: Any) -> None:
        self.handler = handler
        self.deserialize = request.FromString
        self.serialize = reply.SerializeToString


def _unary_methods(node: Node) -> dict[str, _Method]:
    """The node's unary methods by path, from the descriptors of the services it serves."""
    methods: dict[str, _Method] = {}
    for service in node.served_services():
        for m in service.descriptor.methods:
            if not (m.client_streaming or m.server_streaming):
                methods[f"/{service.name}/{m.name}"] = _Method(
                    getattr(node, m.name),
                    GetMessageClass(m.input_type),
                    GetMessageClass(m.output_type),
                )
    return methods


class LinkService:
    """Serves the link for one node: :meth:`start` it, add :meth:`handler` to the server.

    >>> # link = LinkService(node, middleware=[LoadMiddleware(load), ErrorMiddleware()])
    >>> # await link.start("127.0.0.1"); server.add_generic_rpc_handlers((link.handler(),))
    >>> # ...; await link.drain(grace); await link.close()
    """

    def __init__(
        self,
        node: Node,
        *,
        middleware: Sequence[Middleware],
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    ) -> None:
        self._methods = _unary_methods(node)
        self._max_message_bytes = link_message_limit(max_request_bytes)
        self._chain = tuple(middleware)
        self._token = secrets.token_bytes(TOKEN_BYTES)
        self._server: asyncio.Server | None = None
        self._connections: set[_LinkConnection] = set()
        self._all_closed = asyncio.Event()
        self._all_closed.set()
        self.port = 0
        """The link's port once started."""
        self._draining = False
        self._in_flight: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.calls = 0
        """Calls served over the link."""

    @property
    def methods(self) -> list[str]:
        """The unary methods the link serves (none: do not advertise it)."""
        return sorted(self._methods)

    async def start(self, host: str, *, ssl: _ssl.SSLContext | None = None) -> None:
        """Listen for the bus on ``host`` (the node's gRPC host), on a free port; TLS with
        ``ssl`` (the context decides whether the bus must present a certificate)."""
        loop = asyncio.get_running_loop()
        # One address only: a name like "localhost" would get a socket per address family,
        # each on a port of its own, and only one port can be announced.
        found = await loop.getaddrinfo(host, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, address = found[0][0], str(found[0][4][0])
        self._server = await loop.create_server(
            lambda: _LinkConnection(self), address, 0, family=family, ssl=ssl
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def handler(self) -> grpc.GenericRpcHandler:
        """The generic handler of ``Where`` (bytes in, bytes out) for the node's server."""
        where: grpc.RpcMethodHandler[bytes, bytes] = grpc.unary_unary_rpc_method_handler(
            self._where
        )

        class _Handler(grpc.GenericRpcHandler):
            def service(self, details: grpc.HandlerCallDetails) -> Any:
                return where if details.method == WHERE_PATH else None

        return _Handler()

    async def drain(self, timeout: float) -> None:
        """Refuse new calls, let those under way finish (up to ``timeout``), say goaway,
        and close once the bus has closed its side (or a second later)."""
        self._draining = True
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        # Frames may be on the wire already: closing now would lose them (and reset the
        # connection). After goaway the bus sends no more and closes when answered; what
        # crosses the goaway is refused as never run.
        for connection in list(self._connections):
            connection.send(encode_goaway())
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._all_closed.wait(), _GOAWAY_WAIT_S)
        await self.close()

    async def close(self) -> None:
        """Stop listening and close every connection (calls still running are cancelled)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for connection in list(self._connections):
            connection.close()
        calls = list(self._in_flight)
        for task in calls:
            task.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def _where(self, _request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        if self._server is None or self._draining:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the node link is not open")
        return encode_where(self.port, self._token)

    def _start(self, frame: Frame, out: _LinkConnection) -> None:
        if self._draining:
            out.send(
                encode_reply(frame.call_id, _UNAVAILABLE, "node draining", (), (), b"", ran=False)
            )
            return
        task = asyncio.get_running_loop().create_task(self._call(frame, out))
        mine = out.calls
        mine[frame.call_id] = task
        self._in_flight.add(task)
        self._idle.clear()

        def done(finished: asyncio.Task[None]) -> None:
            mine.pop(frame.call_id, None)
            self._in_flight.discard(finished)
            if not self._in_flight:
                self._idle.set()

        task.add_done_callback(done)

    async def _call(self, frame: Frame, out: _LinkConnection) -> None:
        context = LinkContext(frame.metadata, frame.timeout, out.peer, out.auth)
        payload = b""
        method = self._methods.get(frame.method)
        try:
            if method is None:
                await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
            try:  # undecodable bytes are the caller's fault, refused before the chain
                request = decode_request(frame.method, method.deserialize, frame.payload)
            except InvalidArgument as exc:
                await abort_with(context, exc)
            reply = await call_through(self._chain, frame.method, context, method.handler, request)
            payload = method.serialize(reply)
            code = context.code() or grpc.StatusCode.OK
        except (_Abort, grpc.aio.AbortError):
            code = context.code() or grpc.StatusCode.UNKNOWN
        except asyncio.CancelledError:
            cancelled = grpc.StatusCode.CANCELLED.value[0]
            out.send(encode_reply(frame.call_id, cancelled, "cancelled", (), (), b"", ran=True))
            raise
        except Exception as exc:
            log.exception("%s failed on the link", frame.method)
            code = grpc.StatusCode.UNKNOWN
            context.set_details(f"Unexpected {type(exc)}: {exc}")
        self.calls += 1
        value = code.value[0]
        out.send(
            encode_reply(
                frame.call_id,
                value,
                context.details() if value != _OK else "",
                context.initial,
                context.trailing,
                payload if value == _OK else b"",
                ran=True,
            )
        )


class _LinkConnection(asyncio.Protocol):
    """One connection from the bus: a hello with the token first, then call frames."""

    def __init__(self, service: LinkService) -> None:
        self._service = service
        self._reader = MessageReader(max_bytes=service._max_message_bytes)
        self._writer = FrameWriter()
        self.send = self._writer.send
        self.close = self._writer.close
        self.calls: dict[int, asyncio.Task[None]] = {}
        """The calls from this connection under way, by call id."""
        self._greeted = False
        self.peer = "link:"
        """Who is at the other end, as gRPC's ``context.peer()`` would say."""
        self.auth: dict[str, list[bytes]] = {}
        """With TLS, the identity the peer's certificate names, as grpc's auth context."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._writer.attach(transport)  # type: ignore[arg-type]
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = f"link:ipv6:[{host}]:{port}" if ":" in host else f"link:ipv4:{host}:{port}"
        tls = transport.get_extra_info("ssl_object")
        der = tls.getpeercert(binary_form=True) if tls is not None else None
        if der:
            self.auth = {
                "transport_security_type": [b"ssl"],
                "x509_subject_alternative_name": [
                    (SPIFFE_PREFIX + name_from_certificate(der)).encode()
                ],
            }
        self._service._connections.add(self)
        self._service._all_closed.clear()

    def data_received(self, data: bytes) -> None:
        service = self._service
        try:
            for frame in self._reader.feed(data):
                if not self._greeted:
                    if frame.kind != HELLO or frame.payload != service._token:
                        raise ValueError("the first frame is not the bus's hello with the token")
                    self._greeted = True
                    self.send(encode_hello(service._token))
                elif frame.kind == CALL:
                    service._start(frame, self)
                elif frame.kind == CANCEL:
                    task = self.calls.get(frame.call_id)
                    if task is not None:
                        task.cancel()
        except ValueError as exc:
            log.warning("link from %s closed: %s", self.peer, exc)
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._service._connections.discard(self)
        if not self._service._connections:
            self._service._all_closed.set()
        for task in list(self.calls.values()):
            task.cancel()
