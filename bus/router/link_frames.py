"""The node link's frames: unary calls multiplexed on one long-lived stream per node.

A routed unary call costs the bus a server-side call (from the caller) and a client-side
call (to the node); on Python's gRPC the second is most of the router's own cost. A node
served by the SDK also accepts calls as frames on one bidirectional stream
(``/powerbus.link.v1.Link/Open``, raw bytes, no protobuf service): a frame is one write on
a stream that is already open, and frames queued together go in one message.

Frames, big-endian::

    call    (bus→node)  B kind=1, I id, d timeout (<0: none), H+method, metadata, I+payload
    cancel  (bus→node)  B kind=2, I id
    reply   (node→bus)  B kind=3, I id, B code, B ran, H+details, metadata (initial),
                        metadata (trailing), I+payload
    hello   (node→bus)  B kind=4                      (the stream is open)

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

import struct
from collections.abc import Iterator, Sequence

__all__ = [
    "CALL",
    "CANCEL",
    "HELLO",
    "LINK_PATH",
    "REPLY",
    "Frame",
    "decode",
    "encode_call",
    "encode_cancel",
    "encode_hello",
    "encode_reply",
]

LINK_PATH = "/powerbus.link.v1.Link/Open"

CALL, CANCEL, REPLY, HELLO = 1, 2, 3, 4

_CALL = struct.Struct("!BIdH")
_CANCEL = struct.Struct("!BI")
_REPLY = struct.Struct("!BIBBH")
_HELLO = struct.Struct("!B")
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


def encode_hello() -> bytes:
    return _HELLO.pack(HELLO)


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
            elif kind == HELLO:
                at += _HELLO.size
                yield Frame(HELLO, 0)
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
