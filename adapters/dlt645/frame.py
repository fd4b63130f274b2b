"""DL/T 645-2007 frames: encoding, checksum, +33H scrambling and a resynchronising decoder.

``[FE FE FE FE] 68 A0..A5 68 C L DATA CS 16``: the address is 12 BCD digits sent low
byte first, every DATA byte is sent +33H, CS is the byte sum from the first 68H.

>>> frame = Frame(address="000102030425", control=Control.READ, data=bytes.fromhex("00000100"))
>>> frame.encode(preamble=0).hex(" ")
'68 25 04 03 02 01 00 68 11 04 33 33 34 33 e1 16'
>>> decoder = FrameDecoder()
>>> [type(e).__name__ for e in decoder.feed(b"\\x00\\xfe" + frame.encode())]
['Frame']
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "BROADCAST",
    "MAX_DATA",
    "Control",
    "Corrupt",
    "Frame",
    "FrameDecoder",
    "ReplyPattern",
    "checksum",
    "decode_address",
    "encode_address",
    "scramble",
    "unscramble",
]

START = 0x68
END = 0x16
PREAMBLE = 0xFE
MAX_DATA = 200  # the standard's limit for read replies; anything longer is not a header
BROADCAST = "999999999999"
_HEADER = 10  # 68 A0..A5 68 C L


class Control(IntEnum):
    """Control codes (D4-D0 function, D7 direction, D6 abnormal)."""

    BROADCAST_TIME = 0x08
    READ = 0x11
    READ_FOLLOW = 0x12
    READ_ADDRESS = 0x13
    READ_REPLY = 0x91
    READ_FOLLOW_REPLY = 0xB1  # normal reply with D5 set: more follows
    READ_ADDRESS_REPLY = 0x93
    READ_ERROR = 0xD1
    RELAY = 0x1C  # 拉合闸 / 费控 control
    RELAY_REPLY = 0x9C
    RELAY_ERROR = 0xDC


def checksum(data: bytes | bytearray | memoryview) -> int:
    """Sum of the bytes modulo 256."""
    return sum(data) & 0xFF


_ADD33 = bytes((b + 0x33) & 0xFF for b in range(256))
_SUB33 = bytes((b - 0x33) & 0xFF for b in range(256))


def scramble(data: bytes) -> bytes:
    """Add 33H to every byte (what the sender does)."""
    return data.translate(_ADD33)


def unscramble(data: bytes | bytearray | memoryview) -> bytes:
    """Subtract 33H from every byte (what the receiver does)."""
    return bytes(data).translate(_SUB33)


def encode_address(address: str) -> bytes:
    """12 digits to 6 BCD bytes, low byte first; ``A`` digits (wildcard) become nibble A.

    >>> encode_address("000102030425").hex()
    '250403020100'
    """
    if len(address) != 12:
        raise ValueError(f"a DL/T 645 address has 12 digits: {address!r}")
    return bytes.fromhex(address)[::-1]


def decode_address(raw: bytes | bytearray | memoryview) -> str:
    """6 BCD bytes (low byte first) to the 12-digit address."""
    return bytes(raw)[::-1].hex().upper()


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame with its data already unscrambled."""

    address: str
    control: int
    data: bytes = b""

    def encode(self, *, preamble: int = 4) -> bytes:
        """The bytes on the wire, with ``preamble`` wake-up FE bytes."""
        if len(self.data) > 255:
            raise ValueError("DL/T 645 data is at most 255 bytes")
        body = (
            bytes((START,))
            + encode_address(self.address)
            + bytes((START, self.control, len(self.data)))
            + scramble(self.data)
        )
        return bytes((PREAMBLE,)) * preamble + body + bytes((checksum(body), END))

    @property
    def is_reply(self) -> bool:
        """D7 set: sent by a slave."""
        return bool(self.control & 0x80)

    @property
    def is_error(self) -> bool:
        """D6 set: an abnormal reply carrying an error byte."""
        return bool(self.control & 0x40)


@dataclass(frozen=True, slots=True)
class Corrupt:
    """Bytes that looked like a frame but failed the checksum or the end byte."""

    address: str
    raw: bytes


class ReplyPattern:
    """The normal reply a read (11H) request expects: the first nine bytes (68 address 68
    91H), the DI as sent and, when ``size`` is given, the length of the data after the DI.
    :meth:`match` recognises a reply that came whole with a few byte comparisons in C
    instead of decoding and matching it in Python (a poll receives thousands, and that
    Python is most of what a reply costs the client: docs/metering.md, Benchmark).

    >>> request = Frame("000102030425", Control.READ, bytes.fromhex("00000100"))
    >>> reply = Frame("000102030425", Control.READ_REPLY, bytes.fromhex("0000010042061200"))
    >>> ReplyPattern(request, size=4).match(b"\\xfe" + reply.encode()).hex()
    '42061200'
    """

    __slots__ = ("_prefix", "_size", "address", "control", "di", "head", "request_di")

    def __init__(self, request: Frame, *, size: int | None = None) -> None:
        self.address = request.address
        self.control = request.control | 0x80
        self.head = bytes((START,)) + encode_address(request.address) + bytes((START, self.control))
        self.request_di = request.data[:4]
        self.di = scramble(self.request_di)
        self._size = size
        self._prefix = self.head if size is None else self.head + bytes((4 + size,)) + self.di

    def match(self, data: bytes) -> bytes | None:
        """The reply's data after the DI (unscrambled) when ``data`` is exactly the
        expected reply, whole, after nothing but FE preamble; else None."""
        start = data.find(self._prefix)
        if start < 0:
            return None
        end = len(data) - 2
        length = end - start - _HEADER
        if self._size is None:
            if (
                not 4 <= length <= MAX_DATA
                or data[start + 9] != length
                or data[start + _HEADER : start + _HEADER + 4] != self.di
            ):
                return None
        elif length != 4 + self._size:
            return None
        if (
            data[-1] != END
            or sum(data[start:end]) & 0xFF != data[end]
            or (start and data.count(PREAMBLE, 0, start) != start)
        ):
            return None
        return data[start + _HEADER + 4 : end].translate(_SUB33)


class FrameDecoder:
    """Incremental decoder: feed it bytes as they arrive, get frames out.

    Garbage before a frame, FE preambles and frames that fail their checks are skipped
    one byte at a time, so the decoder finds the next real frame even when the garbage
    contains 68H bytes or a frame is cut. ``discarded`` counts skipped non-preamble bytes
    (the line's health), ``pending`` says whether a started frame is still incomplete.
    """

    __slots__ = ("_buffer", "discarded")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.discarded = 0

    @property
    def pending(self) -> bool:
        """True when the buffer holds the start of a frame that has not ended yet."""
        return bool(self._buffer) and self._buffer[0] == START

    def clear(self) -> None:
        """Forget buffered bytes (e.g. after reconnecting)."""
        self._buffer.clear()

    def expected(self, data: bytes, pattern: ReplyPattern) -> Frame | None:
        """``data`` as the reply ``pattern`` describes (:meth:`ReplyPattern.match`),
        with nothing buffered before it; else None (then :meth:`feed` it: anything else is
        decoded, matched or skipped there)."""
        if self._buffer:
            return None
        payload = pattern.match(data)
        if payload is None:
            return None
        return Frame(pattern.address, pattern.control, pattern.request_di + payload)

    def feed(self, data: bytes) -> list[Frame | Corrupt]:
        """Add ``data`` and return every complete frame (or corrupt candidate) in it."""
        if not self._buffer:
            # The usual case, one whole reply in one read: decoded without buffering.
            whole = _whole_frame(data)
            if whole is not None:
                return [whole]
        buf = self._buffer
        buf += data
        events: list[Frame | Corrupt] = []
        while buf:
            start = buf.find(START)
            if start < 0:
                self._skip(len(buf))
                break
            if start:
                self._skip(start)
            if len(buf) < _HEADER:
                break
            length = buf[9]
            if buf[7] != START or length > MAX_DATA:
                self._skip(1)
                continue
            total = _HEADER + length + 2
            if len(buf) < total:
                # A cut frame followed by a real one can look like the start of a long
                # frame; if a complete, valid frame already sits further on, the start
                # here was debris: resynchronise on that frame instead of waiting.
                later = self._complete_frame_after(1)
                if later < 0:
                    break
                self._skip(later)
                continue
            body = bytes(buf[: total - 2])
            if buf[total - 1] != END or buf[total - 2] != checksum(body):
                events.append(Corrupt(decode_address(body[1:7]), bytes(buf[:total])))
                self._skip(1)
                continue
            del buf[:total]
            events.append(Frame(decode_address(body[1:7]), body[8], unscramble(body[_HEADER:])))
        return events

    def _complete_frame_after(self, offset: int) -> int:
        """Index of the first complete frame with a good checksum at or after ``offset``."""
        buf = self._buffer
        i = buf.find(START, offset)
        while i >= 0 and i + _HEADER <= len(buf):
            length = buf[i + 9]
            total = _HEADER + length + 2
            if (
                buf[i + 7] == START
                and length <= MAX_DATA
                and i + total <= len(buf)
                and buf[i + total - 1] == END
                and buf[i + total - 2] == checksum(memoryview(buf)[i : i + total - 2])
            ):
                return i
            i = buf.find(START, i + 1)
        return -1

    def _skip(self, count: int) -> None:
        skipped = self._buffer[:count]
        self.discarded += count - skipped.count(PREAMBLE)
        del self._buffer[:count]


def _whole_frame(data: bytes) -> Frame | None:
    """``data`` as one valid frame after nothing but FE preamble bytes, else None."""
    start = data.find(START)
    if start < 0 or data.count(PREAMBLE, 0, start) != start or len(data) < start + _HEADER:
        return None
    length = data[start + 9]
    if (
        len(data) != start + _HEADER + length + 2
        or data[start + 7] != START
        or length > MAX_DATA
        or data[-1] != END
    ):
        return None
    body = data[start:-2]
    if data[-2] != checksum(body):
        return None
    return Frame(decode_address(body[1:7]), body[8], unscramble(body[_HEADER:]))
