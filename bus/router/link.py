"""The bus's end of a node link: unary calls as frames on one stream per node.

The link opens lazily, on the first call to a node; until the node's hello arrives (and
whenever the stream is broken, or if the node has no link: UNIMPLEMENTED, asked again
every five minutes) calls take the ordinary gRPC path, so
the link can only make calls cheaper, never make them fail. Calls queued while a write is
under way go together in the next message, written by the caller that found the stream
idle.

A call's deadline is kept here (a timer, not a task per call): when it passes the caller
gets DEADLINE_EXCEEDED and the node a cancel frame. A stream that breaks fails the calls
on it with UNAVAILABLE, marking those whose frame was never written as never run, so
they are retried elsewhere whatever the method.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Coroutine
from typing import Any

import grpc

from powerbus.bus.router.link_frames import (
    HELLO,
    LINK_PATH,
    REPLY,
    Frame,
    decode,
    encode_call,
    encode_cancel,
)

__all__ = ["NodeLink", "broken_reply"]

log = logging.getLogger(__name__)

_DEADLINE_EXCEEDED = grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
_UNAVAILABLE = grpc.StatusCode.UNAVAILABLE.value[0]
_Metadata = tuple[tuple[str, str | bytes], ...]


def broken_reply(call_id: int, code: int, details: str, *, ran: bool) -> Frame:
    """A reply made up here for a call the node did not answer."""
    frame = Frame(REPLY, call_id)
    frame.code, frame.details, frame.ran = code, details, ran
    return frame


class NodeLink:
    """The link to one node; ``usable()`` before each call, ``call()`` to make one."""

    def __init__(self, channel: grpc.aio.Channel, address: str) -> None:
        self.address = address
        self._channel = channel
        self._stream: Any = None
        self.ready = False
        self.supported = True
        """False once the node answered that it has no link (it is asked again later)."""
        self._failures = 0
        self._retry_at = 0.0
        self._next_id = 0
        self._pending: dict[int, tuple[asyncio.Future[Frame], asyncio.TimerHandle | None]] = {}
        self._queue: list[tuple[int, bytes]] = []
        self._unwritten: set[int] = set()
        self._writing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    def usable(self) -> bool:
        """Whether calls can go on the link now; starts opening it if not."""
        if self.ready:
            return True
        if self._stream is None and not self._closed:
            loop = asyncio.get_running_loop()
            if loop.time() >= self._retry_at:
                self._open(loop)
        return False

    async def call(
        self, method: str, metadata: _Metadata, payload: bytes, timeout: float | None
    ) -> Frame:
        """Send one call; its reply frame (made up here on a deadline or a broken link)."""
        loop = asyncio.get_running_loop()
        self._next_id = call_id = (self._next_id + 1) & 0xFFFFFFFF
        future: asyncio.Future[Frame] = loop.create_future()
        timer = loop.call_later(timeout, self._expire, call_id) if timeout is not None else None
        self._pending[call_id] = (future, timer)
        self._queue.append((call_id, encode_call(call_id, method, timeout, metadata, payload)))
        self._unwritten.add(call_id)
        try:
            if not self._writing:
                await self._flush(self._stream)
            return await future
        except asyncio.CancelledError:
            self._forget(call_id)
            raise

    async def close(self) -> None:
        """Fail what is pending and stop; the channel is the pool's to close."""
        self._closed = True
        self._broken("the link was closed")
        await self._settle()

    def _open(self, loop: asyncio.AbstractEventLoop) -> None:
        self._stream = self._channel.stream_stream(LINK_PATH)()
        self._tasks = [
            loop.create_task(self._read(self._stream), name=f"link reader {self.address}")
        ]

    async def _read(self, stream: Any) -> None:
        reason = "the node ended the link"
        try:
            async for message in stream:
                for frame in decode(message):
                    if frame.kind == REPLY:
                        entry = self._pending.pop(frame.call_id, None)
                        if entry is not None:
                            future, timer = entry
                            if timer is not None:
                                timer.cancel()
                            if not future.done():
                                future.set_result(frame)
                    elif frame.kind == HELLO:
                        self.ready = True
                        self._failures = 0
        except grpc.aio.AioRpcError as exc:
            reason = f"link broke: {exc.code().name} {exc.details()}"
            if exc.code() is grpc.StatusCode.UNIMPLEMENTED and not self.ready:
                # Not an SDK node (or an old one): plain calls only; ask again much later,
                # in case it is upgraded in place.
                self.supported = False
        except ValueError as exc:
            reason = f"link garbled: {exc}"
        if stream is self._stream:
            self._broken(reason)

    async def _flush(self, stream: Any) -> None:
        """Write what is queued, in as few messages as possible. The caller that finds no
        write under way does the writing (no writer task to wake): calls queued meanwhile
        go in its next message."""
        self._writing = True
        try:
            while self._queue and stream is self._stream:
                batch, self._queue = self._queue, []
                await stream.write(b"".join(frame for _, frame in batch))
                for call_id, _ in batch:
                    self._unwritten.discard(call_id)
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as exc:
            if stream is self._stream:
                self._broken(f"link write failed: {exc}")
        except asyncio.CancelledError:
            # The writing caller left; whoever is queued behind it still gets written.
            if self._queue and stream is self._stream:
                self._spawn(self._flush(stream))
            raise
        finally:
            self._writing = False

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)

    def _expire(self, call_id: int) -> None:
        entry = self._pending.pop(call_id, None)
        if entry is None:
            return
        future, _timer = entry
        if not future.done():
            ran = call_id not in self._unwritten
            future.set_result(
                broken_reply(call_id, _DEADLINE_EXCEEDED, "Deadline Exceeded", ran=ran)
            )
        self._cancel_on_node(call_id)

    def _forget(self, call_id: int) -> None:
        entry = self._pending.pop(call_id, None)
        if entry is not None and entry[1] is not None:
            entry[1].cancel()
        self._cancel_on_node(call_id)

    def _cancel_on_node(self, call_id: int) -> None:
        if call_id in self._unwritten:
            self._unwritten.discard(call_id)
            self._queue = [(i, f) for i, f in self._queue if i != call_id]
        elif self.ready:
            self._queue.append((0, encode_cancel(call_id)))
            if not self._writing:
                self._spawn(self._flush(self._stream))

    def _broken(self, reason: str) -> None:
        if self._stream is None:
            return
        stream, self._stream = self._stream, None
        if self.ready:
            log.info("link to %s down: %s", self.address, reason)
        self.ready = False
        stream.cancel()
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        pending, self._pending = self._pending, {}
        for call_id, (future, timer) in pending.items():
            if timer is not None:
                timer.cancel()
            if not future.done():
                ran = call_id not in self._unwritten
                future.set_result(broken_reply(call_id, _UNAVAILABLE, reason, ran=ran))
        self._queue, self._unwritten = [], set()
        self._failures += 1
        loop = asyncio.get_running_loop()
        if self.supported:
            self._retry_at = loop.time() + random.uniform(0, min(5.0, 0.1 * 2**self._failures))
        else:
            self._retry_at = loop.time() + 300.0

    async def _settle(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
