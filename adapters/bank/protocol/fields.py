"""Fixed-width fields in GBK, the way banks' 代收 interfaces lay out a message.

A layout is a tuple of :class:`Field`; each has a width in **bytes** (a Chinese character
takes two in GBK). Text is left-aligned and space-padded, numbers are right-aligned and
zero-padded, amounts are unsigned fen. Decoding names the field and its byte offset.

>>> layout = (Field("account_id", 10), Field("amount", 6, Kind.AMOUNT))
>>> encode_fields(layout, {"account_id": "A1", "amount": 1234})
b'A1        001234'
>>> decode_fields(layout, b'A1        001234', base=0)
{'account_id': 'A1', 'amount': 1234}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from powerbus.adapters.bank.errors import EncodingError, ProtocolError, TruncatedMessage
from powerbus.bus.kernel.errors import InvalidArgument

__all__ = ["Field", "Kind", "decode_fields", "encode_fields", "layout_width"]


class Kind(Enum):
    """How a field's bytes map to a Python value."""

    TEXT = "text"  # str, GBK
    ASCII = "ascii"  # str, ASCII only (serials, codes)
    NUMBER = "number"  # int >= 0, zero-padded digits
    AMOUNT = "amount"  # int fen >= 0, zero-padded digits
    DATE = "date"  # datetime.date, YYYYMMDD
    TIMESTAMP = "timestamp"  # datetime.datetime (bank local time), YYYYMMDDHHMMSS
    FLAG = "flag"  # bool, "0"/"1"
    CODE = "code"  # a str Enum, its value


@dataclass(frozen=True, slots=True)
class Field:
    """One fixed-width field; ``enum`` is the enum type of a ``CODE`` field."""

    name: str
    width: int
    kind: Kind = Kind.ASCII
    enum: type[Enum] | None = None


def layout_width(layout: tuple[Field, ...]) -> int:
    """Total bytes of a layout."""
    return sum(f.width for f in layout)


def encode_fields(layout: tuple[Field, ...], values: Mapping[str, object]) -> bytes:
    """The fields' bytes; ``InvalidArgument`` naming the field when a value does not fit."""
    return b"".join(_encode(f, values[f.name]) for f in layout)


def decode_fields(layout: tuple[Field, ...], data: bytes, *, base: int) -> dict[str, Any]:
    """Values by field name; errors name the field and its offset (``base`` + position)."""
    if len(data) < layout_width(layout):
        cut = _field_at(layout, len(data))
        raise TruncatedMessage(
            cut.name, base + len(data), f"body has {len(data)} of {layout_width(layout)} bytes"
        )
    out: dict[str, Any] = {}
    pos = 0
    for f in layout:
        out[f.name] = _decode(f, data[pos : pos + f.width], base + pos)
        pos += f.width
    return out


def _field_at(layout: tuple[Field, ...], pos: int) -> Field:
    end = 0
    for f in layout:
        end += f.width
        if pos < end:
            return f
    return layout[-1]


def _digits(f: Field, value: object) -> bytes:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidArgument(f.name, f"expected a non-negative int, got {value!r}")
    text = str(value).encode("ascii")
    if len(text) > f.width:
        raise InvalidArgument(f.name, f"{value} needs more than {f.width} digits")
    return text.rjust(f.width, b"0")


def _encode(f: Field, value: object) -> bytes:
    if f.kind in (Kind.NUMBER, Kind.AMOUNT):
        return _digits(f, value)
    if f.kind is Kind.DATE:
        assert isinstance(value, dt.date)
        return value.strftime("%Y%m%d").encode("ascii")
    if f.kind is Kind.TIMESTAMP:
        assert isinstance(value, dt.datetime)
        return value.strftime("%Y%m%d%H%M%S").encode("ascii")
    if f.kind is Kind.FLAG:
        return b"1" if value else b"0"
    if f.kind is Kind.CODE:
        assert isinstance(value, Enum)
        raw = str(value.value).encode("ascii")
    else:
        try:
            raw = str(value).encode("gbk" if f.kind is Kind.TEXT else "ascii")
        except UnicodeEncodeError:
            raise InvalidArgument(f.name, f"not encodable as {f.kind.value}: {value!r}") from None
    if len(raw) > f.width:
        raise InvalidArgument(f.name, f"{len(raw)} bytes do not fit in {f.width}")
    return raw.ljust(f.width, b" ")


def _decode(f: Field, raw: bytes, offset: int) -> object:
    if f.kind in (Kind.NUMBER, Kind.AMOUNT):
        if not raw.isdigit():
            raise ProtocolError(f.name, offset, f"not digits: {raw!r}")
        return int(raw)
    if f.kind is Kind.FLAG:
        if raw not in (b"0", b"1"):
            raise ProtocolError(f.name, offset, f"not a 0/1 flag: {raw!r}")
        return raw == b"1"
    if f.kind in (Kind.DATE, Kind.TIMESTAMP):
        fmt = "%Y%m%d" if f.kind is Kind.DATE else "%Y%m%d%H%M%S"
        try:
            stamp = dt.datetime.strptime(raw.decode("ascii"), fmt)
        except (UnicodeDecodeError, ValueError):
            raise ProtocolError(f.name, offset, f"not a {fmt} time: {raw!r}") from None
        return stamp.date() if f.kind is Kind.DATE else stamp
    try:
        text = raw.rstrip(b" ").decode("gbk" if f.kind is Kind.TEXT else "ascii")
    except UnicodeDecodeError as exc:
        raise EncodingError(
            f.name, offset + exc.start, f"not {f.kind.value}: {raw[exc.start : exc.end]!r}"
        ) from None
    if f.kind is Kind.CODE:
        assert f.enum is not None
        try:
            return f.enum(text)
        except ValueError:
            raise ProtocolError(f.name, offset, f"unknown {f.enum.__name__} {text!r}") from None
    return text
