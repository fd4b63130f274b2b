"""Register words to values and back: float32 and uint32 in big-endian word order, and
pulse counters (kWh = pulses ÷ pulse constant, wrapping at 2^32).

>>> decode_float32([17254, 6554])
(230.10000610351562,)
>>> encode_uint32([70000])
[1, 4464]
>>> counter_delta(4294967290, 10)
16
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

__all__ = [
    "COUNTER_MODULUS",
    "counter_delta",
    "decode_float32",
    "decode_uint32",
    "encode_float32",
    "encode_uint32",
    "pulses_to_kwh",
    "registers_bytes",
]

COUNTER_MODULUS = 1 << 32


def decode_float32(words: Sequence[int]) -> tuple[float, ...]:
    """IEEE-754 float32 values from pairs of 16-bit words, high word first (ABCD)."""
    count = len(words) // 2
    return struct.unpack(f">{count}f", struct.pack(f">{count * 2}H", *words[: count * 2]))


def encode_float32(values: Sequence[float]) -> list[int]:
    """The inverse of :func:`decode_float32`."""
    raw = struct.pack(f">{len(values)}f", *values)
    return list(struct.unpack(f">{len(values) * 2}H", raw))


def decode_uint32(words: Sequence[int]) -> tuple[int, ...]:
    """Unsigned 32-bit values from pairs of words, high word first."""
    count = len(words) // 2
    return struct.unpack(f">{count}I", struct.pack(f">{count * 2}H", *words[: count * 2]))


def encode_uint32(values: Sequence[int]) -> list[int]:
    """The inverse of :func:`decode_uint32` (values taken modulo 2^32)."""
    raw = struct.pack(f">{len(values)}I", *(v % COUNTER_MODULUS for v in values))
    return list(struct.unpack(f">{len(values) * 2}H", raw))


def registers_bytes(words: Sequence[int]) -> bytes:
    """16-bit register words as the bytes they are on the wire (big-endian)."""
    return struct.pack(f">{len(words)}H", *words)


def counter_delta(previous: int, current: int, *, modulus: int = COUNTER_MODULUS) -> int:
    """Pulses counted between two reads of a counter that wraps at ``modulus``.

    A smaller ``current`` is read as one wrap; whether that is plausible (rather than a
    reset) is the caller's judgement, against the largest rate the meter can reach.
    """
    return (current - previous) % modulus


def pulses_to_kwh(pulses: int, pulse_constant: int) -> float:
    """Energy of ``pulses`` at ``pulse_constant`` imp/kWh."""
    if pulse_constant <= 0:
        raise ValueError(f"pulse constant must be positive, got {pulse_constant}")
    return pulses / pulse_constant
