"""The plug-in point of acquisition: a :class:`MeterDriver` reads meters on one line.

>>> ReadScope("energy") is ReadScope.ENERGY
True
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Protocol

from powerbus.adapters.meters.errors import MeterError
from powerbus.adapters.meters.records import MeterReading, MeterSpec
from powerbus.bus.kernel.addresses import HostPort

__all__ = ["MeterDriver", "ReadScope"]


class ReadScope(str, Enum):
    """How much of a meter one read takes: the energy registers only (interval reads), or
    everything the model has (on-demand reads: voltages, currents, power, clock)."""

    ENERGY = "energy"
    FULL = "full"


class MeterDriver(Protocol):
    """Reads the meters behind one gateway; implementations serialise their line.

    >>> # driver = Dlt645Client(gateway) or ModbusDriver(gateway)
    >>> # reading = await driver.read(spec, scope=ReadScope.ENERGY)
    """

    gateway: HostPort

    async def read(self, meter: MeterSpec, *, scope: ReadScope = ReadScope.FULL) -> MeterReading:
        """Read ``meter``; raises a :class:`~powerbus.adapters.meters.errors.MeterError`."""
        ...

    async def read_many(
        self, meters: Sequence[MeterSpec], *, scope: ReadScope = ReadScope.ENERGY
    ) -> list[MeterReading | MeterError]:
        """Read ``meters`` (all on this line) one after another; each result is a reading
        or that meter's error. A driver may share frames between meters (the channels of
        one pulse terminal are one read)."""
        ...

    async def close(self) -> None:
        """Close the line's connection (idempotent)."""
        ...
