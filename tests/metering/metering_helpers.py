"""Shared helpers of the metering tests: a local day on the grid and quick series."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from powerbus.nodes.metering.vee import IntervalRead, MeterSpec, RegisterRead

UTC = timezone.utc
# Local midnight in Asia/Shanghai (the default VEE zone), so a day of slots is a local day.
T0 = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
Q = timedelta(minutes=15)
DAY = timedelta(days=1)


def end(k: int) -> datetime:
    """End of the k-th interval (1-based) after T0."""
    return T0 + k * Q


def reads(values: Iterable[int | None], *, first: int = 1) -> list[IntervalRead]:
    """Interval reads of consecutive intervals; None leaves a gap."""
    return [IntervalRead(end(k), v) for k, v in enumerate(values, start=first) if v is not None]


def registers(values: Iterable[int | None]) -> list[RegisterRead]:
    """Register reads at T0, T0 + 15 min, ...; None skips a read."""
    return [RegisterRead(T0 + k * Q, v) for k, v in enumerate(values) if v is not None]


def meter(**options: object) -> MeterSpec:
    return MeterSpec(meter_id=str(options.pop("meter_id", "M1")), **options)  # type: ignore[arg-type]


def varied(count: int, level: int) -> list[int]:
    """``count`` values around ``level`` (level, level+1, level+2, ...): never three equal
    in a row, so FROZEN stays quiet, and averaging exactly ``level + 1``."""
    return [level + k % 3 for k in range(count)]
