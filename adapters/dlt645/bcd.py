"""BCD numbers and times as DL/T 645-2007 carries them: every multi-byte item low byte first.

>>> encode_bcd(1206.42, size=4, decimals=2).hex()
'42061200'
>>> decode_bcd(bytes.fromhex("42061200"), decimals=2)
1206.42
>>> decode_bcd(encode_bcd(-1.5, size=3, decimals=4, signed=True), decimals=4, signed=True)
-1.5
"""

from __future__ import annotations

from datetime import datetime

__all__ = [
    "BcdError",
    "decode_bcd",
    "decode_datetime",
    "encode_bcd",
    "encode_datetime",
]


class BcdError(ValueError):
    """A byte that is not two BCD digits, or a value that does not fit."""


def encode_bcd(value: float, *, size: int, decimals: int, signed: bool = False) -> bytes:
    """``value`` as ``size`` BCD bytes with ``decimals`` implied decimals, low byte first.

    With ``signed`` the top bit of the highest byte is the sign (DL/T 645's rule for
    power, current and power factor); values that do not fit raise :class:`BcdError`.
    """
    negative = value < 0
    scaled = round(abs(value) * 10**decimals)
    digits = f"{scaled:0{size * 2}d}"
    if len(digits) > size * 2 or (signed and int(digits[0]) > 7):
        raise BcdError(f"{value} does not fit {size} BCD bytes with {decimals} decimals")
    raw = bytearray(int(digits[i : i + 2], 16) for i in range(0, size * 2, 2))
    if signed and negative:
        raw[0] |= 0x80
    return bytes(reversed(raw))


def decode_bcd(raw: bytes, *, decimals: int, signed: bool = False) -> float:
    """The inverse of :func:`encode_bcd`."""
    # The hex of BCD bytes is the decimal number itself; hex, isdigit and int do the
    # digit work in C, which is most of what a poll's reply costs to decode.
    digits = bytes(raw)[::-1].hex()
    negative = signed and digits[:1] > "7"
    if negative:
        digits = str(int(digits[0], 16) & 0x7) + digits[1:]
    if not digits.isdigit():
        if not digits:
            return 0.0
        raise BcdError(f"not BCD: {bytes(raw).hex()}")
    result = int(digits) / 10**decimals if decimals else float(int(digits))
    return -result if negative else result


def encode_datetime(when: datetime, fields: str = "YMDhm") -> bytes:
    """The fields of ``when`` named by ``fields`` (Y M D h m s, and W for weekday, Sunday 0),
    written high to low in ``fields`` order and sent low byte first.

    >>> encode_datetime(datetime(2026, 12, 4, 13, 5)).hex()
    '0513041226'
    """
    parts = {
        "Y": when.year % 100,
        "M": when.month,
        "D": when.day,
        "W": (when.weekday() + 1) % 7,
        "h": when.hour,
        "m": when.minute,
        "s": when.second,
    }
    return bytes(int(str(parts[f]), 16) for f in reversed(fields))


def decode_datetime(raw: bytes, fields: str = "YMDhm") -> datetime:
    """The inverse of :func:`encode_datetime` (weekday is ignored; naive local time)."""
    if len(raw) != len(fields):
        raise BcdError(f"expected {len(fields)} bytes for {fields}, got {len(raw)}")
    values: dict[str, int] = {}
    for name, byte in zip(reversed(fields), raw, strict=True):
        if byte >> 4 > 9 or byte & 0x0F > 9:
            raise BcdError(f"not BCD: {raw.hex()}")
        values[name] = (byte >> 4) * 10 + (byte & 0x0F)
    try:
        return datetime(
            2000 + values.get("Y", 0),
            values.get("M", 1),
            values.get("D", 1),
            values.get("h", 0),
            values.get("m", 0),
            values.get("s", 0),
        )
    except ValueError as bad:
        raise BcdError(f"not a date/time: {raw.hex()} ({bad})") from None
