"""DL/T 645-2007 data identifiers (DI3 DI2 DI1 DI0) and the layout of their values.

A DI is written here as the 32-bit number ``0xDI3DI2DI1DI0`` and sent low byte first.

>>> di_bytes(DI.ENERGY_FORWARD).hex()
'00000100'
>>> ITEMS[DI.VOLTAGE_A]
Item(size=2, decimals=1, signed=False)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "DI",
    "ITEMS",
    "Item",
    "LoadProfile",
    "daily_freeze",
    "di_bytes",
    "energy_rate",
]


class DI(IntEnum):
    """The identifiers this adapter reads (and the simulator serves)."""

    ENERGY_FORWARD = 0x00010000
    ENERGY_FORWARD_BLOCK = 0x0001FF00  # total + rates 1-4
    ENERGY_REVERSE = 0x00020000
    ENERGY_REVERSE_BLOCK = 0x0002FF00
    VOLTAGE_A = 0x02010100
    VOLTAGE_B = 0x02010200
    VOLTAGE_C = 0x02010300
    CURRENT_A = 0x02020100
    CURRENT_B = 0x02020200
    CURRENT_C = 0x02020300
    POWER = 0x02030000
    POWER_FACTOR = 0x02060000
    FREQUENCY = 0x02800002
    DATE = 0x04000101  # YYMMDDWW
    TIME = 0x04000102  # hhmmss
    STATUS_3 = 0x04000503  # 电表运行状态字3, 2 bytes; bit 4 set: relay open (断)
    LOAD_PROFILE_EARLIEST = 0x06000000
    LOAD_PROFILE_AT = 0x06000001
    LOAD_PROFILE_LATEST = 0x06000002


class LoadProfile:
    """Load-profile (负荷记录) constants: all-classes DI2 = 00, energy is class 4."""

    CLASSES = 6
    ENERGY_CLASS = 4
    MAX_BLOCKS_PER_FRAME = 6  # 6 records of 32 bytes + DI fit the 200-byte limit
    INTERVAL_MINUTES = 15


@dataclass(frozen=True, slots=True)
class Item:
    """A BCD value: ``size`` bytes, ``decimals`` implied decimals, sign in the top bit."""

    size: int
    decimals: int
    signed: bool = False


ENERGY = Item(4, 2)

ITEMS: dict[int, Item] = {
    DI.ENERGY_FORWARD: ENERGY,
    DI.ENERGY_REVERSE: ENERGY,
    DI.VOLTAGE_A: Item(2, 1),
    DI.VOLTAGE_B: Item(2, 1),
    DI.VOLTAGE_C: Item(2, 1),
    DI.CURRENT_A: Item(3, 3, signed=True),
    DI.CURRENT_B: Item(3, 3, signed=True),
    DI.CURRENT_C: Item(3, 3, signed=True),
    DI.POWER: Item(3, 4, signed=True),
    DI.POWER_FACTOR: Item(2, 3, signed=True),
    DI.FREQUENCY: Item(2, 2),
}


def energy_rate(rate: int, *, reverse: bool = False) -> int:
    """The DI of one rate's (1-4) forward or reverse active energy; 0 is the total."""
    if not 0 <= rate <= 4:
        raise ValueError(f"rate 0-4, got {rate}")
    return (DI.ENERGY_REVERSE if reverse else DI.ENERGY_FORWARD) | (rate << 8)


def daily_freeze(kind: int, day: int) -> int:
    """The DI of daily-freeze data ``05 06 kind day``: ``kind`` 0 the freeze time, 1 the
    forward active energy block, 2 the reverse; ``day`` 1 is the most recent (up to 62).

    >>> hex(daily_freeze(1, 1))
    '0x5060101'
    """
    if kind not in (0, 1, 2) or not 1 <= day <= 62:
        raise ValueError(f"daily freeze kind 0-2 and day 1-62, got {kind}, {day}")
    return 0x05060000 | (kind << 8) | day


def di_bytes(di: int) -> bytes:
    """The identifier as sent (before scrambling): low byte first."""
    return di.to_bytes(4, "little")
