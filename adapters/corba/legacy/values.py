"""Value converters of a legacy mapping: each turns a legacy value into a proto value and back.

A mapping names them in ``convert = "..."``:

============  =================================  ==========================================
name          legacy side                        proto side
============  =================================  ==========================================
gbk           GBK bytes (``sequence<octet>``)    str
yuan_to_fen   yuan as double                     fen as int64 (half-up, to the fen)
date          ``"YYYYMMDD"`` in the mapping's    ``google.protobuf.Timestamp`` at that day's
              time zone (``""`` = none)          midnight (unset = ``""``)
row_token     row number (``long``), -1 = end    page token: ``""`` or the number as text
digits        string                             string of its digits only
code:TABLE    a code (``"01"``)                  the table's value: an enum value name (sent
                                                 as its number), a bool, number or string
============  =================================  ==========================================

>>> yuan_to_fen().to_proto(-123.45), yuan_to_fen().to_legacy(12345)
(-12345, 123.45)
>>> gbk().to_legacy("国网"), gbk().to_proto(b"\\xb9\\xfa\\xcd\\xf8")
(b'\\xb9\\xfa\\xcd\\xf8', '国网')
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from google.protobuf.timestamp_pb2 import Timestamp

from powerbus.bus.kernel.errors import ConfigError, InvalidArgument

__all__ = [
    "CodeTable",
    "Converter",
    "date",
    "digits",
    "gbk",
    "identity",
    "parse_offset",
    "row_token",
    "yuan_to_fen",
]


class Converter(Protocol):
    """Both directions of one conversion; ``field`` names the value in errors."""

    def to_proto(self, value: Any) -> Any: ...

    def to_legacy(self, value: Any) -> Any: ...


@dataclass(frozen=True)
class _Identity:
    def to_proto(self, value: Any) -> Any:
        return value

    def to_legacy(self, value: Any) -> Any:
        return value


def identity() -> Converter:
    return _Identity()


@dataclass(frozen=True)
class _Gbk:
    field: str

    def to_proto(self, value: Any) -> str:
        # Reading never fails on one bad byte of an old record; it shows as U+FFFD.
        return bytes(value).decode("gbk", errors="replace")

    def to_legacy(self, value: str) -> bytes:
        try:
            return value.encode("gbk")
        except UnicodeEncodeError as exc:
            bad = value[exc.start : exc.end]
            raise InvalidArgument(self.field, f"{bad!r} cannot be written in GBK") from None


def gbk(field: str = "value") -> Converter:
    """GBK bytes <-> text."""
    return _Gbk(field)


_FEN = Decimal("0.01")


@dataclass(frozen=True)
class _YuanToFen:
    field: str

    def to_proto(self, value: float) -> int:
        if not math.isfinite(value):
            raise InvalidArgument(self.field, f"amount is not a number: {value!r}")
        # repr() gives the shortest decimal that reads back as the same double, so 0.1
        # yuan is 10 fen, not 10.000000000000000555 fen.
        yuan = Decimal(repr(float(value))).quantize(_FEN, rounding=ROUND_HALF_UP)
        return int(yuan * 100)

    def to_legacy(self, value: int) -> float:
        return float(Decimal(int(value)) / 100)


def yuan_to_fen(field: str = "value") -> Converter:
    """Yuan as a double <-> integer fen."""
    return _YuanToFen(field)


_OFFSET = re.compile(r"^([+-])(\d\d):(\d\d)$")


def parse_offset(text: str) -> timezone:
    """``"+08:00"`` -> a fixed UTC offset (legacy systems knew no daylight saving)."""
    match = _OFFSET.match(text.strip())
    if not match:
        raise ConfigError(f"timezone: expected +HH:MM, got {text!r}")
    sign = -1 if match[1] == "-" else 1
    return timezone(sign * timedelta(hours=int(match[2]), minutes=int(match[3])))


@dataclass(frozen=True)
class _Date:
    field: str
    zone: timezone

    def to_proto(self, value: str) -> Timestamp | None:
        text = value.strip()
        if not text or text.strip("0") == "":
            return None
        try:
            day = datetime.strptime(text, "%Y%m%d").replace(tzinfo=self.zone)
        except ValueError:
            return None  # an impossible date in an old record reads as no date
        stamp = Timestamp()
        stamp.FromDatetime(day)
        return stamp

    def to_legacy(self, value: Timestamp | None) -> str:
        if value is None or (value.seconds == 0 and value.nanos == 0):
            return ""
        return value.ToDatetime(tzinfo=timezone.utc).astimezone(self.zone).strftime("%Y%m%d")


def date(field: str = "value", *, zone: timezone = timezone(timedelta(hours=8))) -> Converter:
    """``"YYYYMMDD"`` (a day in ``zone``) <-> a Timestamp at that day's midnight."""
    return _Date(field, zone)


@dataclass(frozen=True)
class _RowToken:
    field: str

    def to_proto(self, value: int) -> str:
        return "" if value < 0 else str(value)

    def to_legacy(self, value: str) -> int:
        if not value:
            return 0
        if not value.isdigit():
            raise InvalidArgument(self.field, f"not a page token of this service: {value!r}")
        return int(value)


def row_token(field: str = "value") -> Converter:
    """A legacy row number (-1 after the last page) <-> an opaque page token."""
    return _RowToken(field)


@dataclass(frozen=True)
class _Digits:
    def to_proto(self, value: str) -> str:
        return "".join(c for c in value if c.isdigit())

    def to_legacy(self, value: str) -> str:
        return "".join(c for c in value if c.isdigit())


def digits() -> Converter:
    """Keep the digits of a phone number and drop the rest."""
    return _Digits()


class CodeTable:
    """A legacy code table: code -> proto value; the first code of a value maps back.

    ``default`` (the table's ``_default`` entry) is the proto value of an unknown code;
    without it an unknown code is an error.

    >>> table = CodeTable("yes_no", {"Y": True, "N": False}, field="important")
    >>> table.to_proto("Y"), table.to_legacy(False)
    (True, 'N')
    """

    def __init__(
        self,
        name: str,
        codes: Mapping[str, Any],
        *,
        field: str = "value",
        default: Any = None,
    ) -> None:
        self.name = name
        self.field = field
        self._to_proto = dict(codes)
        self._default = default
        self._to_legacy: dict[Any, str] = {}
        for code, value in codes.items():
            self._to_legacy.setdefault(_key(value), code)

    def to_proto(self, value: str) -> Any:
        try:
            return self._to_proto[value.strip()]
        except KeyError:
            if self._default is not None:
                return self._default
            raise InvalidArgument(
                self.field, f"code {value!r} is not in table {self.name}"
            ) from None

    def to_legacy(self, value: Any) -> str:
        try:
            return self._to_legacy[_key(value)]
        except KeyError:
            raise InvalidArgument(
                self.field, f"{value!r} has no code in table {self.name}"
            ) from None

    def values(self) -> list[Any]:
        return list(self._to_proto.values())

    def mapped(self, convert: Any) -> CodeTable:
        """The same table with every proto value passed through ``convert`` (enum names
        to numbers)."""
        codes = {code: convert(value) for code, value in self._to_proto.items()}
        default = None if self._default is None else convert(self._default)
        return CodeTable(self.name, codes, field=self.field, default=default)


def _key(value: Any) -> tuple[type, Any]:
    # True == 1 in Python: keep bools and numbers apart.
    return (bool if isinstance(value, bool) else type(value), value)
