"""Meter configuration and reading records shared by every southbound adapter.

>>> spec = MeterSpec.from_row({"meter_id": "P1", "protocol": "modbus",
...     "gateway": "127.0.0.1:5020", "address": "3/2", "model": "pulse8",
...     "pulse_constant": "1600"})
>>> spec.unit, spec.channel, spec.pulse_constant
(3, 2, 1600)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import NamedTuple

from powerbus.bus.kernel.addresses import HostPort, parse_host_port
from powerbus.bus.kernel.errors import InvalidArgument

__all__ = [
    "MeterReading",
    "MeterSpec",
    "Model",
    "Quantity",
    "Reading",
    "WireProtocol",
]


class WireProtocol(str, Enum):
    """How a line is spoken to (the ``protocol`` column of the meters file)."""

    MODBUS = "modbus"
    DLT645 = "dlt645"


class Model(str, Enum):
    """Meter models (the ``model`` column of the meters file)."""

    SDM630 = "sdm630"
    SDM120 = "sdm120"
    PULSE8 = "pulse8"
    DLT645 = "dlt645"


class Quantity(str, Enum):
    """What a reading measures; energies in kWh, power in kW, voltage V, current A."""

    ENERGY_FORWARD = "energy_forward"
    ENERGY_REVERSE = "energy_reverse"
    VOLTAGE = "voltage"
    CURRENT = "current"
    POWER = "power"
    POWER_FACTOR = "power_factor"
    FREQUENCY = "frequency"
    PULSES = "pulses"


UNITS: dict[Quantity, str] = {
    Quantity.ENERGY_FORWARD: "kWh",
    Quantity.ENERGY_REVERSE: "kWh",
    Quantity.VOLTAGE: "V",
    Quantity.CURRENT: "A",
    Quantity.POWER: "kW",
    Quantity.POWER_FACTOR: "",
    Quantity.FREQUENCY: "Hz",
    Quantity.PULSES: "",
}


class Reading(NamedTuple):
    """One value: ``phase`` 0 is the total/system value, ``tou`` 0 the all-rates total.

    A named tuple rather than a frozen dataclass: a poll builds several for every meter it
    reads, and a tuple costs half as much to build (docs/metering.md, Benchmark).
    """

    quantity: Quantity
    value: float
    phase: int = 0
    tou: int = 0

    @property
    def unit(self) -> str:
        """The unit of the value: kWh, kW, V, A, Hz, or "" for ratios and counts."""
        return UNITS[self.quantity]


class MeterReading(NamedTuple):
    """What one read of one meter returned.

    ``meter_time`` is the meter's own clock where it has one (DL/T 645); ``alarms`` holds
    device-reported conditions such as ``"wire_break"`` on a pulse channel. A named tuple
    for the reason :class:`Reading` is one: a poll builds one for every meter.
    """

    meter_id: str
    read_at: datetime
    readings: tuple[Reading, ...]
    meter_time: datetime | None = None
    alarms: frozenset[str] = frozenset()

    def value(self, quantity: Quantity, *, phase: int = 0, tou: int = 0) -> float | None:
        """The value of one quantity, or None when the read did not include it."""
        for reading in self.readings:
            if reading.quantity is quantity and reading.phase == phase and reading.tou == tou:
                return reading.value
        return None


@dataclass(frozen=True, slots=True)
class MeterSpec:
    """One row of the meters file: where a meter is and how to read it.

    ``address`` is the Modbus unit id, the 12-digit DL/T 645 address, or ``UNIT/CHANNEL``
    for a pulse terminal channel.
    """

    meter_id: str
    protocol: WireProtocol
    gateway: HostPort
    address: str
    model: Model
    pulse_constant: int | None = None
    # parsed from the address once: a poll asks for them for every meter
    _unit: int = field(init=False, repr=False, compare=False, default=0)
    _channel: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        if not self.meter_id:
            raise InvalidArgument("meter_id", "empty")
        if self.model is Model.PULSE8 and not self.pulse_constant:
            raise InvalidArgument("pulse_constant", f"{self.meter_id}: a pulse channel needs one")
        if (self.model is Model.DLT645) != (self.protocol is WireProtocol.DLT645):
            raise InvalidArgument(
                "model", f"{self.meter_id}: {self.model.value} on {self.protocol.value}"
            )
        if self.model is Model.DLT645:
            if len(self.address) != 12 or not self.address.isdigit():
                raise InvalidArgument(
                    "address", f"{self.meter_id}: not 12 digits: {self.address!r}"
                )
        else:
            object.__setattr__(self, "_unit", self._parse_unit())
            object.__setattr__(self, "_channel", self._parse_channel())

    @property
    def unit(self) -> int:
        """The Modbus unit id (device id); 0 for a DL/T 645 meter."""
        return self._unit

    @property
    def channel(self) -> int:
        """The pulse channel (1-8); 0 for a meter that is not a pulse channel."""
        return self._channel

    def _parse_unit(self) -> int:
        text = self.address.partition("/")[0]
        if not text.isdigit() or not 1 <= int(text) <= 247:
            raise InvalidArgument("address", f"{self.meter_id}: bad unit id {self.address!r}")
        return int(text)

    def _parse_channel(self) -> int:
        if self.model is not Model.PULSE8:
            return 0
        _, sep, text = self.address.partition("/")
        if not sep or not text.isdigit() or not 1 <= int(text) <= 8:
            raise InvalidArgument(
                "address", f"{self.meter_id}: want UNIT/1-8, got {self.address!r}"
            )
        return int(text)

    @classmethod
    def from_row(cls, row: Mapping[str, str]) -> MeterSpec:
        """A spec from a CSV row; errors name the column."""
        try:
            protocol = WireProtocol(row["protocol"].strip())
            model = Model(row["model"].strip())
        except KeyError as missing:
            raise InvalidArgument(str(missing.args[0]), "missing column") from None
        except ValueError as bad:
            raise InvalidArgument("protocol/model", str(bad)) from None
        constant = (row.get("pulse_constant") or "").strip()
        return cls(
            meter_id=row["meter_id"].strip(),
            protocol=protocol,
            gateway=parse_host_port(row["gateway"], field="gateway", allow_zero=False),
            address=row["address"].strip(),
            model=model,
            pulse_constant=int(constant) if constant else None,
        )

    def to_row(self) -> dict[str, str]:
        """The CSV row of this spec."""
        return {
            "meter_id": self.meter_id,
            "protocol": self.protocol.value,
            "gateway": str(self.gateway),
            "address": self.address,
            "model": self.model.value,
            "pulse_constant": "" if self.pulse_constant is None else str(self.pulse_constant),
        }
