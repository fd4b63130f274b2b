"""Length-prefixed frames: ``NNNNNN`` (six ASCII digits, the body's byte count), then the body.

TCP delivers a stream, so a frame may arrive in pieces or several in one read;
:class:`FrameDecoder` reassembles them whatever the split.

>>> frame(b"hello")
b'000005hello'
>>> decoder = FrameDecoder()
>>> decoder.feed(b"0000")
>>> decoder.feed(b"02hi000001x")
>>> decoder.next_frame(), decoder.next_frame(), decoder.next_frame()
(b'hi', b'x', None)
"""

from __future__ import annotations

from powerbus.adapters.bank.errors import FramingError, TruncatedMessage
from powerbus.bus.kernel.errors import InvalidArgument

__all__ = ["HEADER_SIZE", "MAX_BODY", "FrameDecoder", "frame"]

HEADER_SIZE = 6
MAX_BODY = 999_999


def frame(body: bytes) -> bytes:
    """The body with its length header."""
    if not body or len(body) > MAX_BODY:
        raise InvalidArgument("body", f"{len(body)} bytes; a frame holds 1..{MAX_BODY}")
    return b"%06d" % len(body) + body


class FrameDecoder:
    """Incremental decoder of a byte stream into frame bodies.

    A bad length header raises :class:`FramingError` from :meth:`next_frame` only once the
    frames before it were taken, so nothing already received is lost. After it the stream
    has no trustworthy boundary left; the caller answers and closes.
    """

    def __init__(self, *, max_body: int = MAX_BODY) -> None:
        self._buffer = bytearray()
        self._max = max_body
        self._consumed = 0  # stream offset of the buffer's start, for error messages

    def feed(self, data: bytes) -> None:
        """Append bytes read from the stream."""
        self._buffer += data

    @property
    def pending(self) -> int:
        """Bytes received that do not yet make a whole frame."""
        return len(self._buffer)

    def next_frame(self) -> bytes | None:
        """The next whole frame body, or None until more bytes arrive."""
        if len(self._buffer) < HEADER_SIZE:
            return None
        head = bytes(self._buffer[:HEADER_SIZE])
        if not head.isdigit():
            raise FramingError("length", self._consumed, f"not {HEADER_SIZE} digits: {head!r}")
        size = int(head)
        if not 0 < size <= self._max:
            raise FramingError("length", self._consumed, f"{size} outside 1..{self._max}")
        end = HEADER_SIZE + size
        if len(self._buffer) < end:
            return None
        body = bytes(self._buffer[HEADER_SIZE:end])
        del self._buffer[:end]
        self._consumed += end
        return body

    def end_of_stream(self) -> None:
        """The peer closed: raise :class:`TruncatedMessage` if part of a frame is left."""
        if self._buffer:
            want = (
                f"{int(self._buffer[:HEADER_SIZE]) + HEADER_SIZE}"
                if len(self._buffer) >= HEADER_SIZE and self._buffer[:HEADER_SIZE].isdigit()
                else "a length header of 6"
            )
            raise TruncatedMessage(
                "frame", self._consumed, f"stream ended after {len(self._buffer)} of {want} bytes"
            )
