"""The farm's meters, generated from a seed: which lines, which models, which customers.

Gateways alternate Modbus and DL/T 645 lines (gateway 0 is Modbus), or all speak one
protocol (:class:`LineMix`); meters are dealt to gateways in turn. On a Modbus line the
meters cycle SDM630, SDM120, SDM120, then pulse channels, packed eight to a terminal.
Ports are filled in when the gateways listen.

>>> plan = plan_farm(meters=12, gateways=2, seed=1)
>>> sorted({s.model.value for s in plan.slots})
['dlt645', 'pulse8', 'sdm120', 'sdm630']
>>> {s.model.value for s in plan_farm(meters=12, gateways=2, seed=1, lines=LineMix.DLT645).slots}
{'dlt645'}
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

from powerbus.adapters.meters.records import Model, WireProtocol
from powerbus.adapters.meters.sim.profile import CustomerClass

__all__ = ["FarmPlan", "LineMix", "MeterSlot", "plan_farm"]

PULSE_CONSTANTS = (1000, 1200, 1600, 3200, 6400)  # imp/kWh (FACTS §2)
_MODBUS_CYCLE = (Model.SDM630, Model.SDM120, Model.SDM120, Model.PULSE8, Model.PULSE8)
# (share of meters, mean kW range) per class
_CLASSES = (
    (CustomerClass.RESIDENTIAL, 0.7, (0.25, 0.9)),
    (CustomerClass.COMMERCIAL, 0.2, (3.0, 25.0)),
    (CustomerClass.INDUSTRIAL, 0.1, (40.0, 300.0)),
)
# Single-phase meters (the SDM120, the DL/T 645 household meter 单相表) serve households;
# three-phase meters and pulse terminals serve shops and plants. The CRM seed reads the
# same rule from the meters file, so a household is never billed for a plant's load.
HOUSEHOLD_MODELS = frozenset({Model.SDM120, Model.DLT645})


class LineMix(str, Enum):
    """What the farm's gateways speak: both protocols in turn, or one."""

    MIXED = "mixed"
    DLT645 = "dlt645"
    """Every line DL/T 645-2007: household meters that keep their daily freezes, as a
    utility's residential 采集 estate mostly is."""
    MODBUS = "modbus"

    def protocol_of(self, gateway: int) -> WireProtocol:
        if self is LineMix.MIXED:
            return WireProtocol.DLT645 if gateway % 2 else WireProtocol.MODBUS
        return WireProtocol.DLT645 if self is LineMix.DLT645 else WireProtocol.MODBUS


@dataclass(frozen=True, slots=True)
class MeterSlot:
    """One meter of the plan: where it sits and what it is."""

    meter_id: str
    gateway: int
    protocol: WireProtocol
    model: Model
    address: str
    customer: CustomerClass
    mean_kw: float
    initial_kwh: float
    seed: int
    pulse_constant: int | None = None

    @property
    def unit(self) -> int:
        return int(self.address.partition("/")[0])


@dataclass(frozen=True, slots=True)
class FarmPlan:
    """The protocol of each gateway and every meter's slot."""

    gateways: tuple[WireProtocol, ...]
    slots: tuple[MeterSlot, ...]


def plan_farm(*, meters: int, gateways: int, seed: int, lines: LineMix = LineMix.MIXED) -> FarmPlan:
    """Deal ``meters`` over ``gateways`` lines (same seed, same farm)."""
    if meters < 1 or gateways < 1:
        raise ValueError("need at least one meter and one gateway")
    rng = random.Random(seed)
    kinds = tuple(lines.protocol_of(g) for g in range(gateways))
    position = [0] * gateways  # meters dealt to each line so far
    next_unit = [1] * gateways
    terminal: dict[int, tuple[int, int]] = {}  # line -> (unit, channels used)
    slots = []
    for index in range(meters):
        g = index % gateways
        n = position[g]
        position[g] += 1
        model = (
            Model.DLT645
            if kinds[g] is WireProtocol.DLT645
            else _MODBUS_CYCLE[n % len(_MODBUS_CYCLE)]
        )
        customer, mean_kw = _customer(rng, household=model in HOUSEHOLD_MODELS)
        if kinds[g] is WireProtocol.DLT645:
            address, constant = f"{seed % 100:02d}{g:04d}{n:06d}", None
        else:
            constant = None
            if model is Model.PULSE8:
                unit, used = terminal.get(g, (0, 8))
                if used == 8:
                    unit, used = next_unit[g], 0
                    next_unit[g] += 1
                terminal[g] = (unit, used + 1)
                address, constant = f"{unit}/{used + 1}", rng.choice(PULSE_CONSTANTS)
                mean_kw = min(mean_kw, 20.0)  # an S0 output tops out around 20 kW
            else:
                address = str(next_unit[g])
                next_unit[g] += 1
            if next_unit[g] > 248:
                raise ValueError(f"too many Modbus devices on gateway {g}; add gateways")
        slots.append(
            MeterSlot(
                meter_id=f"M{index + 1:05d}",
                gateway=g,
                protocol=kinds[g],
                model=model,
                address=address,
                customer=customer,
                mean_kw=round(mean_kw, 3),
                initial_kwh=round(rng.uniform(100, 40000), 2),
                seed=rng.randrange(1 << 30),
                pulse_constant=constant,
            )
        )
    return FarmPlan(kinds, tuple(slots))


def _customer(rng: random.Random, *, household: bool) -> tuple[CustomerClass, float]:
    pick = rng.random()
    classes = _CLASSES[:1] if household else _CLASSES[1:]
    pick *= sum(share for _, share, _ in classes)
    for customer, share, (low, high) in classes:
        if pick < share:
            return customer, rng.uniform(low, high)
        pick -= share
    customer, _, (low, high) = classes[-1]
    return customer, rng.uniform(low, high)
