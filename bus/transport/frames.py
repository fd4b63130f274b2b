"""The node link's frames: unary calls multiplexed on one TCP connection per node.

A routed unary call costs the bus a server-side call (from the caller) and a client-side
call (to the node). On Python's gRPC each is several hand-offs between gRPC's poller
thread and the event loop; on the link the second is one ``write`` on a socket that is
already open and one ``data_received`` for the reply, so a routed call costs the node
less than a direct one and the bus little more than the call it received.

An SDK node listens for the link on a second, ephemeral port beside its gRPC port and
tells the bus where, with a token, through ``/powerbus.link.v1.Link/Where`` on its gRPC
port (raw bytes, no protobuf service); the connection's first frames are the bus's hello
with that token and the node's hello back, so a port reused by another process is never
mistaken for the node.

On the connection, every frame is one message: ``I length`` then the frame. Frames,
big-endian::

    call    (bus→node)  B kind=1, I id, d timeout (<0: none), H+method, metadata, I+payload
    cancel  (bus→node)  B kind=2, I id
    reply   (node→bus)  B kind=3, I id, B code, B ran, H+details, metadata (initial),
                        metadata (trailing), I+payload
    hello   (both ways) B kind=4, 16s token
    goaway  (node→bus)  B kind=5       (draining: no new calls here; close when answered)

    metadata            H count, then per entry: B is_bytes, H+key, I+value

>>> frame = encode_call(7, "/p.S/M", 1.5, (("x-powerbus-caller", "b-1"),), b"\\x08\\x01")
>>> call = next(decode(frame))
>>> (call.kind, call.call_id, call.method, call.timeout, call.metadata, bytes(call.payload))
(1, 7, '/p.S/M', 1.5, (('x-powerbus-caller', 'b-1'),), b'\\x08\\x01')
>>> reply = next(decode(encode_reply(7, 5, "no such meter", (), (("k", b"v"),), b"", ran=True)))
>>> (reply.kind, reply.code, reply.details, reply.trailing, reply.ran)
(3, 5, 'no such meter', (('k', b'v'),), True)
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator, Sequence

__all__ = [
    "CALL",
    "CANCEL",
    "GOAWAY",
    "HELLO",
    "LINK_MAX_BYTES",
    "LINK_PREFIX",
    "REPLY",
    "TOKEN_BYTES",
    "WHERE_PATH",
    "Frame",
    "FrameWriter",
    "MessageReader",
    "decode",
    "decode_where",
    "encode_call",
    "encode_cancel",
    "encode_goaway",
    "encode_hello",
    "encode_reply",
    "encode_where",
    "framed",
]

LINK_PREFIX = "/powerbus.link.v1.Link/"
WHERE_PATH = LINK_PREFIX + "Where"
"""Unary, on the node's gRPC port: empty request; reply ``H port, 16s token``."""
TOKEN_BYTES = 16
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
LINK_MAX_BYTES = 256 * 1024
"""Larger requests take the ordinary gRPC path: one connection's flow control would
hold up the calls behind them."""

CALL, CANCEL, REPLY, HELLO, GOAWAY = 1, 2, 3, 4, 5

_CALL = struct.Struct("!BIdH")
_CANCEL = struct.Struct("!BI")
_GOAWAY = struct.Struct("!B")
_REPLY = struct.Struct("!BIBBH")
_HELLO = struct.Struct(f"!B{TOKEN_BYTES}s")
_WHERE = struct.Struct(f"!H{TOKEN_BYTES}s")
_COUNT = struct.Struct("!H")
_ENTRY = struct.Struct("!BHI")
_SIZE = struct.Struct("!I")

Pairs = Sequence[tuple[str, "str | bytes"]]


class Frame:
    """One decoded frame; fields not in its kind keep their defaults."""

    __slots__ = (
        "call_id",
        "code",
        "details",
        "initial",
        "kind",
        "metadata",
        "method",
        "payload",
        "ran",
        "timeout",
        "trailing",
    )

    def __init__(self, kind: int, call_id: int) -> None:
        self.kind = kind
        self.call_id = call_id
        self.method = ""
        self.timeout: float | None = None
        self.metadata: tuple[tuple[str, str | bytes], ...] = ()
        self.payload: bytes | memoryview = b""
        self.code = 0
        self.ran = True
        self.details = ""
        self.initial: tuple[tuple[str, str | bytes], ...] = ()
        self.trailing: tuple[tuple[str, str | bytes], ...] = ()


def _pairs(parts: list[bytes], pairs: Pairs) -> None:
    parts.append(_COUNT.pack(len(pairs)))
    for key, value in pairs:
        raw_key = key.encode()
        if isinstance(value, bytes):
            parts += [_ENTRY.pack(1, len(raw_key), len(value)), raw_key, value]
        else:
            raw = value.encode()
            parts += [_ENTRY.pack(0, len(raw_key), len(raw)), raw_key, raw]


def encode_call(
    call_id: int, method: str, timeout: float | None, metadata: Pairs, payload: bytes
) -> bytes:
    raw_method = method.encode()
    parts = [_CALL.pack(CALL, call_id, -1.0 if timeout is None else timeout, len(raw_method))]
    parts.append(raw_method)
    _pairs(parts, metadata)
    parts += [_SIZE.pack(len(payload)), payload]
    return b"".join(parts)


def encode_cancel(call_id: int) -> bytes:
    return _CANCEL.pack(CANCEL, call_id)


def encode_goaway() -> bytes:
    return _GOAWAY.pack(GOAWAY)


def encode_hello(token: bytes) -> bytes:
    return _HELLO.pack(HELLO, token)


def encode_where(port: int, token: bytes) -> bytes:
    return _WHERE.pack(port, token)


def decode_where(reply: bytes) -> tuple[int, bytes]:
    """``(port, token)`` of a ``Where`` reply; ``ValueError`` if it is not one."""
    try:
        port, token = _WHERE.unpack(reply)
    except struct.error:
        raise ValueError(f"not a link address: {len(reply)} bytes") from None
    return int(port), bytes(token)


def framed(frame: bytes) -> bytes:
    """``frame`` as one message on the connection."""
    return _SIZE.pack(len(frame)) + frame


class FrameWriter:
    """Frames out on a transport; those sent in one turn of the event loop go in one write
    (one system call), which under load is most of the link's cost per call.

    Call :meth:`attach` from the protocol's ``connection_made``.
    """

    __slots__ = ("_loop", "_queue", "_transport")

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: list[bytes] = []

    def attach(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._loop = asyncio.get_running_loop()

    def send(self, frame: bytes) -> None:
        """Queue ``frame``; written at the end of this turn of the loop."""
        queue = self._queue
        if not queue and self._loop is not None:
            self._loop.call_soon(self._flush)
        queue += (_SIZE.pack(len(frame)), frame)

    def close(self) -> None:
        """Write what is queued, then close the transport."""
        self._flush()
        if self._transport is not None:
            self._transport.close()

    def _flush(self) -> None:
        queue, self._queue = self._queue, []
        transport = self._transport
        if queue and transport is not None and not transport.is_closing():
            transport.write(b"".join(queue))


class MessageReader:
    """Cuts the connection's byte stream into messages and decodes their frames.

    >>> reader = MessageReader()
    >>> message = framed(encode_cancel(5))
    >>> list(reader.feed(message[:3])), [f.call_id for f in reader.feed(message[3:])]
    ([], [5])
    """

    __slots__ = ("_buffer", "_max_bytes")

    def __init__(self, *, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._buffer = bytearray()
        # Checked on the length prefix, so an oversized message is refused unread.
        self._max_bytes = max_bytes

    def feed(self, data: bytes) -> Iterator[Frame]:
        """The frames completed by ``data``; ``ValueError`` on a malformed message."""
        buffer = self._buffer
        buffer += data
        at, end = 0, len(buffer)
        try:
            while end - at >= _SIZE.size:
                (size,) = _SIZE.unpack_from(buffer, at)
                if size > self._max_bytes:
                    raise ValueError(
                        f"link message of {size} bytes is over the limit of {self._max_bytes}"
                    )
                if end - at - _SIZE.size < size:
                    break
                start = at + _SIZE.size
                at = start + size
                yield from decode(bytes(buffer[start:at]))
        finally:
            del buffer[:at]


def encode_reply(
    call_id: int,
    code: int,
    details: str,
    initial: Pairs,
    trailing: Pairs,
    payload: bytes,
    *,
    ran: bool,
) -> bytes:
    raw_details = details.encode()
    parts = [_REPLY.pack(REPLY, call_id, code, int(ran), len(raw_details)), raw_details]
    _pairs(parts, initial)
    _pairs(parts, trailing)
    parts += [_SIZE.pack(len(payload)), payload]
    return b"".join(parts)


def _read_pairs(data: memoryview, at: int) -> tuple[tuple[tuple[str, str | bytes], ...], int]:
    (count,) = _COUNT.unpack_from(data, at)
    at += _COUNT.size
    pairs: list[tuple[str, str | bytes]] = []
    for _ in range(count):
        is_bytes, key_len, value_len = _ENTRY.unpack_from(data, at)
        at += _ENTRY.size
        key = bytes(data[at : at + key_len]).decode()
        at += key_len
        raw = bytes(data[at : at + value_len])
        at += value_len
        pairs.append((key, raw if is_bytes else raw.decode()))
    return tuple(pairs), at


def decode(message: bytes) -> Iterator[Frame]:
    """The frames of one message, in order; ``ValueError`` on a malformed one."""
    data = memoryview(message)
    at, end = 0, len(data)
    try:
        while at < end:
            kind = data[at]
            if kind == CALL:
                _, call_id, timeout, method_len = _CALL.unpack_from(data, at)
                at += _CALL.size
                frame = Frame(CALL, call_id)
                frame.timeout = None if timeout < 0 else timeout
                frame.method = bytes(data[at : at + method_len]).decode()
                at += method_len
                frame.metadata, at = _read_pairs(data, at)
            elif kind == REPLY:
                _, call_id, code, ran, details_len = _REPLY.unpack_from(data, at)
                at += _REPLY.size
                frame = Frame(REPLY, call_id)
                frame.code, frame.ran = code, bool(ran)
                frame.details = bytes(data[at : at + details_len]).decode()
                at += details_len
                frame.initial, at = _read_pairs(data, at)
                frame.trailing, at = _read_pairs(data, at)
            elif kind == CANCEL:
                _, call_id = _CANCEL.unpack_from(data, at)
                at += _CANCEL.size
                yield Frame(CANCEL, call_id)
                continue
            elif kind == GOAWAY:
                at += _GOAWAY.size
                yield Frame(GOAWAY, 0)
                continue
            elif kind == HELLO:
                _, token = _HELLO.unpack_from(data, at)
                at += _HELLO.size
                frame = Frame(HELLO, 0)
                frame.payload = bytes(token)
                yield frame
                continue
            else:
                raise ValueError(f"unknown link frame kind {kind}")
            (size,) = _SIZE.unpack_from(data, at)
            at += _SIZE.size
            if at + size > end:
                raise ValueError("truncated link frame")
            frame.payload = bytes(data[at : at + size])
            at += size
            yield frame
    except struct.error as exc:
        raise ValueError(f"malformed link frame: {exc}") from None
