"""The RS-485 line behind a simulated gateway: one exchange at a time, each taking its
real time on the wire (11 bits per byte at the baud rate) plus the meter's turnaround.

>>> line = SerialLine(baud=9600)
>>> round(line.cost(8, 41), 4)
0.0611
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from powerbus.adapters.meters.wire import DEFAULT_TURNAROUND, exchange_seconds, frame_seconds

__all__ = ["LineStats", "SerialLine"]


@dataclass(slots=True)
class LineStats:
    """What a line did: ``busy`` is the wire time of every exchange (its physical cost)."""

    exchanges: int = 0
    busy: float = 0.0
    silent: int = 0


class SerialLine:
    """Serialises exchanges and makes each take its wire time; can be cut for a while."""

    def __init__(self, *, baud: int, turnaround: float = DEFAULT_TURNAROUND) -> None:
        self.baud = baud
        self.turnaround = turnaround
        self.stats = LineStats()
        self._lock = asyncio.Lock()
        self._cut_until = 0.0  # time.monotonic(); 0 = not cut

    def cost(self, request_bytes: int, reply_bytes: int) -> float:
        """Seconds one exchange occupies the line (no reply: request plus turnaround)."""
        if not reply_bytes:
            return frame_seconds(request_bytes, baud=self.baud) + self.turnaround
        return exchange_seconds(
            request_bytes, reply_bytes, baud=self.baud, turnaround=self.turnaround
        )

    @property
    def lock(self) -> asyncio.Lock:
        """Held for a whole exchange: a line has one master and one talker at a time."""
        return self._lock

    async def occupy(self, started: float, request_bytes: int, reply_bytes: int) -> None:
        """Sleep until the exchange that began at ``started`` (loop time) is over."""
        cost = self.cost(request_bytes, reply_bytes)
        self.stats.exchanges += 1
        self.stats.busy += cost
        if not reply_bytes:
            self.stats.silent += 1
        delay = started + cost - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)

    def cut(self, real_seconds: float | None) -> None:
        """Cut the line (nothing reaches the meters) for ``real_seconds``, None = until
        :meth:`restore`."""
        self._cut_until = float("inf") if real_seconds is None else time.monotonic() + real_seconds

    def restore(self) -> None:
        """End a cut."""
        self._cut_until = 0.0

    @property
    def is_cut(self) -> bool:
        """Whether the line is cut now (requests vanish, nothing is answered)."""
        return time.monotonic() < self._cut_until
