"""What a simulated DL/T 645-2007 meter answers to a read: the data for a DI, or an
error byte. Pure logic over :class:`~.meter.SimMeter`; no sockets here.

>>> from powerbus.adapters.meters.sim.profile import CustomerClass
>>> m = SimMeter(meter_id="D1", customer=CustomerClass.INDUSTRIAL, mean_kw=80,
...              initial_kwh=5000, seed=1, origin=0.0)
>>> data = answer(m, DI.ENERGY_FORWARD, b"", t=1_780_000_000.0)
>>> isinstance(data, bytes) and len(data) == 4
True
"""

from __future__ import annotations

import math

from powerbus.adapters.dlt645.bcd import BcdError, encode_bcd, encode_datetime
from powerbus.adapters.dlt645.history import (
    ProfileRecord,
    decode_profile_request,
    encode_energy_block,
    encode_profile_record,
)
from powerbus.adapters.dlt645.identifiers import DI, ITEMS, LoadProfile
from powerbus.adapters.meters.sim.clock import LOCAL_OFFSET, local, to_epoch
from powerbus.adapters.meters.sim.meter import SimMeter

__all__ = [
    "FREEZE_DAYS",
    "NO_DATA",
    "OTHER_ERROR",
    "PROFILE_DAYS",
    "answer",
    "freeze_time",
    "profile_record",
]

NO_DATA = 0x02
OTHER_ERROR = 0x01
PROFILE_DAYS = 10  # the standard asks for at least 7 days of 15-minute records
FREEZE_DAYS = 62
_STEP = LoadProfile.INTERVAL_MINUTES * 60
_REACTIVE = math.tan(math.acos(0.95))  # the simulated loads run at PF 0.95


def answer(meter: SimMeter, di: int, extra: bytes, *, t: float) -> bytes | int:
    """Reply data (after the DI) for a read of ``di`` at ``t``, or an error byte."""
    try:
        return _answer(meter, di, extra, t)
    except BcdError:
        return OTHER_ERROR


def _answer(meter: SimMeter, di: int, extra: bytes, t: float) -> bytes | int:
    forward, reverse = meter.registers(t)
    group, rate = di & 0xFFFF00FF, (di >> 8) & 0xFF
    if group in (DI.ENERGY_FORWARD, DI.ENERGY_REVERSE):
        values = forward if group == DI.ENERGY_FORWARD else reverse
        if rate == 0xFF:
            return encode_energy_block(values)
        return encode_energy_block(values[rate : rate + 1]) if rate <= 4 else NO_DATA
    if di in ITEMS:
        return _instant(meter, di, t)
    if di == DI.DATE:
        return encode_datetime(meter.clock(t), "YMDW")
    if di == DI.TIME:
        return encode_datetime(meter.clock(t), "hms")
    if di == DI.STATUS_3:
        return (0x10 if meter.relay_open else 0).to_bytes(2, "little")
    if di >> 16 == 0x0506:
        return _freeze(meter, (di >> 8) & 0xFF, di & 0xFF, t)
    if di >> 8 == 0x060000:
        return _profile(meter, di & 0xFF, extra, t)
    return NO_DATA


def _instant(meter: SimMeter, di: int, t: float) -> bytes:
    item = ITEMS[di]
    power = meter.power_kw(t)
    volts = meter.voltage(t)
    pf = -0.95 if power < 0 else 0.95
    values = {
        DI.VOLTAGE_A: volts,
        DI.VOLTAGE_B: volts + 0.4,
        DI.VOLTAGE_C: volts - 0.3,
        DI.POWER: power,
        DI.POWER_FACTOR: pf,
        DI.FREQUENCY: 50.0,
    }
    current = abs(power) * 1000 / 3 / (volts * 0.95)
    value = values.get(DI(di), math.copysign(current, power))
    return encode_bcd(value, size=item.size, decimals=item.decimals, signed=item.signed)


def freeze_time(t: float, day: int) -> float:
    """The ``day``-th most recent local midnight at or before ``t`` (POSIX seconds)."""
    offset = LOCAL_OFFSET.total_seconds()
    midnight = math.floor((t + offset) / 86400) * 86400 - offset
    return midnight - (day - 1) * 86400


def _freeze(meter: SimMeter, kind: int, day: int, t: float) -> bytes | int:
    if not 1 <= day <= FREEZE_DAYS or kind not in (0, 1, 2):
        return NO_DATA
    at = freeze_time(t, day)
    if kind == 0:
        return encode_datetime(local(at))
    forward, reverse = meter.registers(at)
    return encode_energy_block(forward if kind == 1 else reverse)


def profile_record(meter: SimMeter, at: float) -> ProfileRecord:
    """The load-profile record the meter stored at ``at`` (a 15-minute boundary)."""
    forward, reverse = meter.registers(at)
    return ProfileRecord(
        local(at), forward[0], reverse[0], forward[0] * _REACTIVE, reverse[0] * _REACTIVE
    )


def _profile(meter: SimMeter, mode: int, extra: bytes, t: float) -> bytes | int:
    latest = math.floor(t / _STEP) * _STEP
    earliest = latest - PROFILE_DAYS * 86400 + _STEP
    if mode == 0:
        starts, blocks = earliest, 1
    elif mode == 2:
        starts, blocks = latest, 1
    elif mode == 1:
        try:
            when, blocks = decode_profile_request(extra)
        except BcdError:
            return OTHER_ERROR
        starts = math.ceil(to_epoch(when) / _STEP) * _STEP
        blocks = min(blocks, LoadProfile.MAX_BLOCKS_PER_FRAME)
    else:
        return NO_DATA
    times = [starts + i * _STEP for i in range(blocks)]
    kept = [at for at in times if earliest <= at <= latest]
    if not kept:
        return NO_DATA
    return b"".join(encode_profile_record(profile_record(meter, at)) for at in kept)
