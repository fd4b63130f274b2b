"""Serial-line timing: what a request/reply costs on an RS-485 line.

One byte is 11 bits on the wire (start, 8 data, parity, stop). Both the simulator (to
delay replies) and the benchmark (to compute the physical limit) use these functions,
so "physical limit" means the same thing on both sides.

>>> round(frame_seconds(8, baud=9600) * 1000, 3)
9.167
>>> round(exchange_seconds(8, 41, baud=9600, turnaround=0.005), 4)
0.0611
"""

from __future__ import annotations

__all__ = ["BITS_PER_BYTE", "DEFAULT_TURNAROUND", "exchange_seconds", "frame_seconds"]

BITS_PER_BYTE = 11
# A meter answers a few character times after the request ends; 5 ms is typical of
# Eastron and DL/T 645 meters at 9600 baud and is the simulator's default.
DEFAULT_TURNAROUND = 0.005


def frame_seconds(nbytes: int, *, baud: int) -> float:
    """Time ``nbytes`` take on the wire at ``baud``."""
    return nbytes * BITS_PER_BYTE / baud


def exchange_seconds(
    request_bytes: int, reply_bytes: int, *, baud: int, turnaround: float = DEFAULT_TURNAROUND
) -> float:
    """Request on the wire, the meter's turnaround, then its reply on the wire."""
    return frame_seconds(request_bytes + reply_bytes, baud=baud) + turnaround
