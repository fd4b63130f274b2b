"""Acquisition across lines: one driver per gateway, chosen by protocol through one table;
lines read in parallel, the meters of one line one after another.

>>> async def demo(meters: list[MeterSpec]) -> None:
...     async with Acquisition() as acquisition:
...         results = await acquisition.read_all(meters, scope=ReadScope.ENERGY)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from powerbus.adapters.meters.driver import MeterDriver, ReadScope
from powerbus.adapters.meters.errors import MeterError
from powerbus.adapters.meters.line import LineConfig
from powerbus.adapters.meters.records import MeterReading, MeterSpec, WireProtocol
from powerbus.adapters.meters.watchdog import DeadlineTimer
from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.errors import InvalidArgument
from powerbus.bus.kernel.lifecycle import Lifecycle

if TYPE_CHECKING:
    from powerbus.adapters.dlt645.client import Dlt645Client

__all__ = ["DRIVERS", "Acquisition"]

DriverFactory = Callable[[HostPort, LineConfig, DeadlineTimer], MeterDriver]


# The protocol packages import this package's records, so they are imported when a line
# is first opened rather than at module import (which would be circular).
def _modbus(gateway: HostPort, config: LineConfig, timer: DeadlineTimer) -> MeterDriver:
    from powerbus.adapters.modbus.driver import ModbusDriver

    return ModbusDriver(gateway, config=config, timer=timer)


def _dlt645(gateway: HostPort, config: LineConfig, timer: DeadlineTimer) -> MeterDriver:
    from powerbus.adapters.dlt645.client import Dlt645Client

    return Dlt645Client(gateway, config=config, timer=timer)


DRIVERS: dict[WireProtocol, DriverFactory] = {
    WireProtocol.MODBUS: _modbus,
    WireProtocol.DLT645: _dlt645,
}


class Acquisition(Lifecycle):
    """The drivers of every line in use; ``stop()`` closes their connections. Their
    requests' deadlines share one timer (:mod:`~powerbus.adapters.meters.watchdog`)."""

    def __init__(self, *, config: LineConfig | None = None) -> None:
        self.config = config or LineConfig()
        self._drivers: dict[HostPort, tuple[WireProtocol, MeterDriver]] = {}
        self._timer = DeadlineTimer()

    async def start(self) -> None:
        """Nothing to open up front: lines connect on first use."""

    async def stop(self) -> None:
        """Close every line (idempotent)."""
        drivers, self._drivers = self._drivers, {}
        await asyncio.gather(*(driver.close() for _, driver in drivers.values()))
        self._timer.close()

    def driver(self, meter: MeterSpec) -> MeterDriver:
        """The driver of ``meter``'s line, created on first use."""
        held = self._drivers.get(meter.gateway)
        if held is None:
            try:
                factory = DRIVERS[meter.protocol]
            except KeyError:
                supported = ", ".join(p.value for p in DRIVERS)
                problem = f"{meter.protocol}; supported: {supported}"
                raise InvalidArgument("protocol", problem) from None
            held = (meter.protocol, factory(meter.gateway, self.config, self._timer))
            self._drivers[meter.gateway] = held
        elif held[0] is not meter.protocol:
            raise InvalidArgument(
                "protocol", f"{meter.meter_id}: {meter.gateway} is a {held[0].value} line"
            )
        return held[1]

    def dlt645(self, gateway: HostPort) -> Dlt645Client:
        """The DL/T 645 client of ``gateway`` (for freezes, load profile, time sync)."""
        from powerbus.adapters.dlt645.client import Dlt645Client

        held = self._drivers.get(gateway)
        if held is None:
            client = Dlt645Client(gateway, config=self.config, timer=self._timer)
            self._drivers[gateway] = (WireProtocol.DLT645, client)
            return client
        if not isinstance(held[1], Dlt645Client):
            raise InvalidArgument("gateway", f"{gateway} is a {held[0].value} line")
        return held[1]

    async def read(self, meter: MeterSpec, *, scope: ReadScope = ReadScope.FULL) -> MeterReading:
        """Read one meter."""
        return await self.driver(meter).read(meter, scope=scope)

    async def read_all(
        self, meters: Sequence[MeterSpec], *, scope: ReadScope = ReadScope.ENERGY
    ) -> list[MeterReading | MeterError]:
        """Read ``meters``, every line in parallel; each result is a reading or the typed
        error of that meter, in the order given. A failing meter does not stop its line,
        and the channels of one pulse terminal are one read."""
        results: list[MeterReading | MeterError | None] = [None] * len(meters)
        by_line: dict[HostPort, list[int]] = {}
        for index, meter in enumerate(meters):
            by_line.setdefault(meter.gateway, []).append(index)
        for indexes in by_line.values():
            # a meter on a line of another protocol fails here, up front
            first = meters[indexes[0]]
            self.driver(first)
            for i in indexes:
                if meters[i].protocol is not first.protocol:
                    self.driver(meters[i])  # raises: names the meter and the line

        async def poll_line(indexes: list[int]) -> None:
            line = [meters[i] for i in indexes]
            for index, result in zip(
                indexes, await self.driver(line[0]).read_many(line, scope=scope), strict=True
            ):
                results[index] = result

        await asyncio.gather(*(poll_line(indexes) for indexes in by_line.values()))
        return [r for r in results if r is not None]
