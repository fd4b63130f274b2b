"""The node's end of the link: unary calls from the bus as frames on one stream.

:class:`LinkService` serves ``/powerbus.link.v1.Link/Open`` beside the node's services.
Each call frame runs the same handler a gRPC call would, through the same server
interceptors (load counting, error mapping), with a context that offers what handlers
use: metadata, the time left, ``abort``, codes, details and trailing metadata.

Draining: once :meth:`LinkService.drain` is called (the node deregistered), new call
frames are refused as never run, so the bus retries them elsewhere; calls under way
finish, then the streams end, before the server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, NoReturn

import grpc

from powerbus.bus.router.link_frames import (
    CALL,
    CANCEL,
    LINK_PATH,
    Frame,
    decode,
    encode_hello,
    encode_reply,
)
from powerbus.nodes.sdk.node import Node

__all__ = ["LinkService"]

log = logging.getLogger(__name__)

_CODES = {code.value[0]: code for code in grpc.StatusCode}
_OK = grpc.StatusCode.OK.value[0]
_UNAVAILABLE = grpc.StatusCode.UNAVAILABLE.value[0]
_Pairs = tuple[tuple[str, str | bytes], ...]


class _Abort(Exception):
    """Raised by the context's ``abort``, as grpc's own AbortError is."""


class _LinkContext:
    """What a handler gets for a call that came over the link (a ServicerContext subset)."""

    def __init__(self, metadata: _Pairs, timeout: float | None, peer: str) -> None:
        self._metadata = metadata
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


class _Details:
    """The ``HandlerCallDetails`` interceptors are given."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata: _Pairs = ()


class _Recorder:
    """Stands in for a server to learn the handlers a generated ``add_...`` registers."""

    def __init__(self) -> None:
        self.handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def add_generic_rpc_handlers(self, handlers: Sequence[Any]) -> None:
        """The same handlers come through :meth:`add_registered_method_handlers`."""

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        for name, method in handlers.items():
            self.handlers[f"/{service}/{name}"] = method


class _Replies:
    """Replies of one link stream: the call that finds no write under way writes, and
    takes along whatever was queued meanwhile (no writer task to wake)."""

    def __init__(self, context: grpc.aio.ServicerContext[bytes, bytes]) -> None:
        self._context = context
        self._queue: list[bytes] = []
        self._writing = False

    def send(self, reply: bytes) -> None:
        self._queue.append(reply)
        if not self._writing:
            task = asyncio.get_running_loop().create_task(self.flush())
            _KEEP.add(task)
            task.add_done_callback(_KEEP.discard)

    async def put(self, reply: bytes) -> None:
        """Queue ``reply`` and, if no write is under way, write the queue now."""
        self._queue.append(reply)
        await self.flush()

    async def flush(self) -> None:
        if self._writing:
            return
        self._writing = True
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                await self._context.write(b"".join(batch))
        except (grpc.aio.AioRpcError, grpc.aio.UsageError, RuntimeError) as exc:
            log.debug("link reply not written: %s", exc)
        finally:
            self._writing = False


_KEEP: set[asyncio.Task[None]] = set()

Unary = Callable[[Any, Any], Awaitable[Any]]


class LinkService:
    """Serves the link for one node; add :meth:`handler` to its server.

    >>> # link = LinkService(node, interceptors=[LoadInterceptor(load), ErrorInterceptor()])
    >>> # server.add_generic_rpc_handlers((link.handler(),)); ...; await link.drain(grace)
    """

    def __init__(self, node: Node, *, interceptors: Sequence[grpc.aio.ServerInterceptor]) -> None:
        recorder = _Recorder()
        for service in node.served_services():
            service.add_to_server(node, recorder)  # type: ignore[arg-type]
        self._raw = {p: h for p, h in recorder.handlers.items() if h.unary_unary is not None}
        self._interceptors = list(interceptors)
        self._methods: dict[str, tuple[Unary, Any, Any]] = {}
        self._draining = False
        self._in_flight: set[asyncio.Task[None]] = set()
        self._streams = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.calls = 0
        """Calls served over the link."""

    @property
    def methods(self) -> list[str]:
        """The unary methods the link serves (none: do not advertise it)."""
        return sorted(self._raw)

    def handler(self) -> grpc.GenericRpcHandler:
        """The generic handler of ``/powerbus.link.v1.Link/Open`` (bytes in, bytes out)."""
        open_link: grpc.RpcMethodHandler[bytes, bytes] = grpc.stream_stream_rpc_method_handler(
            self._serve
        )

        class _Handler(grpc.GenericRpcHandler):
            def service(self, details: grpc.HandlerCallDetails) -> Any:
                return open_link if details.method == LINK_PATH else None

        return _Handler()

    async def drain(self, timeout: float) -> None:
        """Refuse new calls, let those under way finish (up to ``timeout``), end streams."""
        self._draining = True
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)

    async def _serve(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> None:
        if self._draining:
            return
        stream = _Replies(context)
        mine: dict[int, asyncio.Task[None]] = {}
        peer = f"link:{context.peer()}"
        await context.write(encode_hello())
        try:
            async for message in requests:
                for frame in decode(message):
                    if frame.kind == CALL:
                        self._start(frame, stream, mine, peer)
                    elif frame.kind == CANCEL:
                        task = mine.get(frame.call_id)
                        if task is not None:
                            task.cancel()
                if self._draining and not mine:
                    break
            # The bus closed its side, or we drain: end once the calls under way are done.
            while mine:
                await asyncio.gather(*mine.values(), return_exceptions=True)
            await stream.flush()
        except (grpc.aio.AioRpcError, ValueError) as exc:
            log.debug("link from %s ended: %s", peer, exc)
        finally:
            for task in mine.values():
                task.cancel()

    def _start(
        self,
        frame: Frame,
        out: _Replies,
        mine: dict[int, asyncio.Task[None]],
        peer: str,
    ) -> None:
        if self._draining:
            out.send(
                encode_reply(frame.call_id, _UNAVAILABLE, "node draining", (), (), b"", ran=False)
            )
            return
        task = asyncio.get_running_loop().create_task(self._call(frame, out, peer))
        mine[frame.call_id] = task
        self._in_flight.add(task)
        self._idle.clear()

        def done(finished: asyncio.Task[None]) -> None:
            mine.pop(frame.call_id, None)
            self._in_flight.discard(finished)
            if not self._in_flight:
                self._idle.set()

        task.add_done_callback(done)

    async def _call(self, frame: Frame, out: _Replies, peer: str) -> None:
        context = _LinkContext(frame.metadata, frame.timeout, peer)
        payload = b""
        try:
            found = await self._method(frame.method)
        except KeyError:
            found = None
        try:
            if found is None:
                await context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
            behavior, deserialize, serialize = found
            reply = await behavior(deserialize(frame.payload), context)
            payload = serialize(reply)
            code = context.code() or grpc.StatusCode.OK
        except _Abort:
            code = context.code() or grpc.StatusCode.UNKNOWN
        except grpc.aio.AbortError:
            code = context.code() or grpc.StatusCode.UNKNOWN
        except asyncio.CancelledError:
            out.send(
                encode_reply(
                    frame.call_id,
                    grpc.StatusCode.CANCELLED.value[0],
                    "cancelled",
                    (),
                    (),
                    b"",
                    ran=True,
                )
            )
            raise
        except Exception as exc:
            log.exception("%s failed on the link", frame.method)
            code, context._details = grpc.StatusCode.UNKNOWN, f"Unexpected {type(exc)}: {exc}"
        self.calls += 1
        value = code.value[0]
        await out.put(
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

    async def _method(self, path: str) -> tuple[Unary, Any, Any]:
        found = self._methods.get(path)
        if found is None:
            raw = self._raw[path]  # KeyError: not a unary method this node serves
            handler: Any = raw
            for interceptor in reversed(self._interceptors):
                handler = await _intercepted(interceptor, handler, path)
            found = (
                handler.unary_unary,
                raw.request_deserializer or _identity,
                raw.response_serializer or _identity,
            )
            self._methods[path] = found
        return found


async def _intercepted(interceptor: grpc.aio.ServerInterceptor, handler: Any, path: str) -> Any:
    async def continuation(_details: Any) -> Any:
        return handler

    return await interceptor.intercept_service(continuation, _Details(path))


def _identity(value: Any) -> Any:
    return value
