"""Meter models as data: which registers a model has, and how a read is planned.

Eastron SDM meters keep float32 values in input registers (FC04); the 8-channel pulse
terminal keeps eight uint32 counters and a wire-break bit mask in holding registers
(FC03). A read covers at most 60 registers, and registers that touch are read together.

>>> [(b.address, b.count) for b in plan(SDM630.registers)]
[(0, 18), (30, 6), (52, 2), (70, 6)]
>>> [(b.address, b.count) for b in plan(SDM630.energy_registers)]
[(72, 4)]
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from powerbus.adapters.meters.records import Model, Quantity

__all__ = [
    "MAX_REGISTERS",
    "MODELS",
    "PULSE8",
    "PULSE_STATUS",
    "SDM120",
    "SDM630",
    "ReadBlock",
    "Register",
    "RegisterMap",
    "Table",
    "ValueType",
    "plan",
]

MAX_REGISTERS = 60


class Table(str, Enum):
    """Which Modbus table holds a model's values."""

    INPUT = "input"  # FC04
    HOLDING = "holding"  # FC03


class ValueType(str, Enum):
    """How a value is laid out in registers (words high first)."""

    FLOAT32 = "float32"
    UINT32 = "uint32"
    UINT16 = "uint16"


@dataclass(frozen=True, slots=True)
class Register:
    """One value: its 0-based PDU address, what it measures, and the factor to our units."""

    address: int
    quantity: Quantity
    phase: int = 0
    scale: float = 1.0
    type: ValueType = ValueType.FLOAT32

    @property
    def words(self) -> int:
        """Registers the value takes."""
        return 1 if self.type is ValueType.UINT16 else 2


@dataclass(frozen=True, slots=True)
class RegisterMap:
    """A model's registers; ``energy`` names the subset an interval read needs."""

    model: Model
    table: Table
    registers: tuple[Register, ...]
    energy: frozenset[Quantity] = frozenset({Quantity.ENERGY_FORWARD, Quantity.ENERGY_REVERSE})

    @property
    def energy_registers(self) -> tuple[Register, ...]:
        return tuple(r for r in self.registers if r.quantity in self.energy)


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One request: ``count`` registers from ``address``, holding ``registers``."""

    address: int
    count: int
    registers: tuple[Register, ...]


def plan(registers: tuple[Register, ...], *, limit: int = MAX_REGISTERS) -> tuple[ReadBlock, ...]:
    """Group ``registers`` into requests: touching ranges merge, up to ``limit`` registers."""
    blocks: list[ReadBlock] = []
    group: list[Register] = []
    for reg in sorted(registers, key=lambda r: r.address):
        if group:
            start = group[0].address
            end = group[-1].address + group[-1].words
            if reg.address == end and reg.address + reg.words - start <= limit:
                group.append(reg)
                continue
            blocks.append(_block(group))
        group = [reg]
    if group:
        blocks.append(_block(group))
    return tuple(blocks)


def _block(group: list[Register]) -> ReadBlock:
    start = group[0].address
    return ReadBlock(start, group[-1].address + group[-1].words - start, tuple(group))


def _phases(base: int, quantity: Quantity, scale: float = 1.0) -> tuple[Register, ...]:
    return tuple(Register(base + 2 * i, quantity, phase=i + 1, scale=scale) for i in range(3))


# PDU addresses = manual register - 30001 (FACTS §1); power is W on the meter, kW here.
SDM630 = RegisterMap(
    model=Model.SDM630,
    table=Table.INPUT,
    registers=(
        *_phases(0x00, Quantity.VOLTAGE),
        *_phases(0x06, Quantity.CURRENT),
        *_phases(0x0C, Quantity.POWER, 0.001),
        *_phases(0x1E, Quantity.POWER_FACTOR),
        Register(0x34, Quantity.POWER, scale=0.001),
        Register(0x46, Quantity.FREQUENCY),
        Register(0x48, Quantity.ENERGY_FORWARD),
        Register(0x4A, Quantity.ENERGY_REVERSE),
    ),
)

SDM120 = RegisterMap(
    model=Model.SDM120,
    table=Table.INPUT,
    registers=(
        Register(0x00, Quantity.VOLTAGE),
        Register(0x06, Quantity.CURRENT),
        Register(0x0C, Quantity.POWER, scale=0.001),
        Register(0x1E, Quantity.POWER_FACTOR),
        Register(0x46, Quantity.FREQUENCY),
        Register(0x48, Quantity.ENERGY_FORWARD),
        Register(0x4A, Quantity.ENERGY_REVERSE),
    ),
)

# Counter n (1-8) at 2(n-1), high word first; bit n-1 of PULSE_STATUS flags a broken wire.
PULSE_STATUS = 0x10
PULSE8 = RegisterMap(
    model=Model.PULSE8,
    table=Table.HOLDING,
    registers=(
        *(Register(2 * i, Quantity.PULSES, phase=i + 1, type=ValueType.UINT32) for i in range(8)),
        Register(PULSE_STATUS, Quantity.PULSES, phase=0, type=ValueType.UINT16),
    ),
    energy=frozenset({Quantity.PULSES}),
)

MODELS: dict[Model, RegisterMap] = {m.model: m for m in (SDM630, SDM120, PULSE8)}
