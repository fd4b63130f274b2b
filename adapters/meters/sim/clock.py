"""The simulator's clock: simulated UTC time that may run faster than real time.

>>> clock = SimClock(start=datetime(2026, 12, 1, tzinfo=timezone.utc), speed=3600)
>>> clock.now() >= datetime(2026, 12, 1, tzinfo=timezone.utc)
True
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

__all__ = ["LOCAL_OFFSET", "SimClock", "local", "to_epoch"]

# China has one time zone and no daylight saving: local time is UTC+8 all year, so a
# fixed offset is exact here and keeps per-request arithmetic cheap.
LOCAL_OFFSET = timedelta(hours=8)


class SimClock:
    """Simulated time = ``start`` + (real time since creation) * ``speed``."""

    def __init__(self, *, start: datetime, speed: float = 1.0) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.start = start
        self.speed = speed
        self._epoch = start.timestamp()
        self._real0 = time.monotonic()

    def epoch(self) -> float:
        """Simulated now as POSIX seconds (what the meters use internally)."""
        return self._epoch + (time.monotonic() - self._real0) * self.speed

    def now(self) -> datetime:
        """Simulated now, UTC."""
        return datetime.fromtimestamp(self.epoch(), timezone.utc)

    def real_seconds(self, sim_seconds: float) -> float:
        """How long ``sim_seconds`` of simulated time take in real time."""
        return sim_seconds / self.speed


def to_epoch(when: datetime) -> float:
    """POSIX seconds of an aware datetime, or of a naive one read as local (UTC+8) time."""
    if when.tzinfo is None:
        when = (when - LOCAL_OFFSET).replace(tzinfo=timezone.utc)
    return when.timestamp()


def local(epoch: float) -> datetime:
    """Naive local (UTC+8) time of POSIX seconds, as meters show it."""
    return datetime.fromtimestamp(epoch, timezone.utc).replace(tzinfo=None) + LOCAL_OFFSET
