"""What a DL/T 645 meter stores itself: load-profile (负荷记录) records and daily freezes.

A load-profile record (all classes, DI ``06 00 00 xx``)::

    A0 A0 | len | YY MM DD hh mm | c1 AA | c2 AA | c3 AA | energy AA | c5 AA | c6 AA | cs | E5

``len`` counts the bytes from the store time to the last ``AA``; ``cs`` is the byte sum
from the first ``A0`` to the last ``AA``. Only the energy class (4) is filled: forward
active, reverse active, combined reactive 1 and 2, 4 BCD bytes each in 0.01 units.
A request for records "at a time" carries the block count (1 BCD byte) and the start
time (5 bytes, minute first).

>>> rec = ProfileRecord(datetime(2026, 12, 3, 0, 15), 1206.42, 0.0, 3.5, 0.0)
>>> decode_profile_records(encode_profile_record(rec)) == [rec]
True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from powerbus.adapters.dlt645.bcd import (
    BcdError,
    decode_bcd,
    decode_datetime,
    encode_bcd,
    encode_datetime,
)
from powerbus.adapters.dlt645.identifiers import LoadProfile

__all__ = [
    "DailyFreeze",
    "ProfileRecord",
    "decode_energy_block",
    "decode_profile_records",
    "decode_profile_request",
    "encode_energy_block",
    "encode_profile_record",
    "encode_profile_request",
]

_SEP = 0xAA
_BAD_START = b"\xe0\xe0"


@dataclass(frozen=True, slots=True)
class ProfileRecord:
    """One 15-minute load-profile record: register values at ``stored_at`` (meter local
    time, naive), energies in kWh and kvarh."""

    stored_at: datetime
    forward: float
    reverse: float
    reactive1: float
    reactive2: float


@dataclass(frozen=True, slots=True)
class DailyFreeze:
    """A daily freeze (日冻结): registers frozen at ``frozen_at`` (local midnight),
    ``forward``/``reverse`` as (total, rate 1, rate 2, rate 3, rate 4) in kWh."""

    frozen_at: datetime
    forward: tuple[float, ...]
    reverse: tuple[float, ...]


def encode_energy_block(values: tuple[float, ...]) -> bytes:
    """(total, rate 1..4) as five 4-byte BCD values, 0.01 kWh."""
    return b"".join(encode_bcd(v, size=4, decimals=2) for v in values)


def decode_energy_block(raw: bytes) -> tuple[float, ...]:
    """The inverse of :func:`encode_energy_block` (any multiple of 4 bytes)."""
    if len(raw) % 4:
        raise BcdError(f"energy block of {len(raw)} bytes")
    # Reversed whole, the block reads as its values high digit first, last value first:
    # one hex and one digit check for all five (decode_bcd says why that matters).
    digits = bytes(raw)[::-1].hex()
    if not digits.isdigit() and digits:
        raise BcdError(f"not BCD: {bytes(raw).hex()}")
    return tuple(int(digits[i - 8 : i]) / 100 for i in range(len(digits), 0, -8))


def encode_profile_record(record: ProfileRecord) -> bytes:
    """One record as the meter sends it."""
    energy = b"".join(
        encode_bcd(v, size=4, decimals=2)
        for v in (record.forward, record.reverse, record.reactive1, record.reactive2)
    )
    body = bytearray(encode_datetime(record.stored_at))
    for cls in range(1, LoadProfile.CLASSES + 1):
        if cls == LoadProfile.ENERGY_CLASS:
            body += energy
        body.append(_SEP)
    head = b"\xa0\xa0" + bytes((len(body),))
    return head + body + bytes((sum(head + body) & 0xFF, 0xE5))


def decode_profile_records(data: bytes) -> list[ProfileRecord]:
    """Every record in a reply's data (after the DI); :class:`BcdError` on a bad one."""
    records: list[ProfileRecord] = []
    pos = 0
    while pos < len(data):
        if data[pos : pos + 2] == _BAD_START:
            raise BcdError("meter marked the record block bad (E0 E0)")
        if data[pos : pos + 2] != b"\xa0\xa0" or pos + 3 > len(data):
            raise BcdError(f"no record start at byte {pos}")
        length = data[pos + 2]
        end = pos + 3 + length
        if end + 2 > len(data) or data[end + 1] != 0xE5:
            raise BcdError(f"record at byte {pos} is truncated")
        if sum(data[pos:end]) & 0xFF != data[end]:
            raise BcdError(f"record at byte {pos} fails its sum check")
        records.append(_decode_body(data[pos + 3 : end]))
        pos = end + 2
    return records


def _decode_body(body: bytes) -> ProfileRecord:
    stored_at = decode_datetime(body[:5])
    classes = body[5:].split(bytes((_SEP,)))
    # split leaves one empty tail after the last separator
    if len(classes) != LoadProfile.CLASSES + 1:
        raise BcdError(f"expected {LoadProfile.CLASSES} class blocks, got {len(classes) - 1}")
    energy = classes[LoadProfile.ENERGY_CLASS - 1]
    if len(energy) != 16:
        raise BcdError(f"energy class block of {len(energy)} bytes")
    values = [decode_bcd(energy[i : i + 4], decimals=2) for i in range(0, 16, 4)]
    return ProfileRecord(stored_at, *values)


def encode_profile_request(start: datetime, blocks: int) -> bytes:
    """The request data after the DI: block count, then the start time."""
    if not 1 <= blocks <= 99:
        raise ValueError(f"blocks 1-99, got {blocks}")
    return encode_bcd(blocks, size=1, decimals=0) + encode_datetime(start)


def decode_profile_request(data: bytes) -> tuple[datetime, int]:
    """The inverse of :func:`encode_profile_request`: (start, blocks)."""
    if len(data) != 6:
        raise BcdError(f"load-profile request of {len(data)} bytes, want 6")
    return decode_datetime(data[1:]), int(decode_bcd(data[:1], decimals=0))
