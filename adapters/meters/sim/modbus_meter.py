"""Register images of simulated Modbus devices: an Eastron SDM (float32 input registers)
and an 8-channel pulse terminal (uint32 counters and a wire-break mask). Pure logic.

>>> from powerbus.adapters.meters.sim.profile import CustomerClass
>>> m = SimMeter(meter_id="S1", customer=CustomerClass.COMMERCIAL, mean_kw=5,
...              initial_kwh=100, seed=2, origin=0.0)
>>> regs = sdm_image(m, three_phase=False, t=1_780_000_000.0)
>>> len(regs), round(decode_float32(regs[0x46:0x48])[0], 2)
(80, 50.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from powerbus.adapters.meters.sim.faults import COMM_FAULTS, Fault
from powerbus.adapters.meters.sim.meter import SimMeter
from powerbus.adapters.modbus.codec import (
    COUNTER_MODULUS,
    decode_float32,
    encode_float32,
    encode_uint32,
)
from powerbus.adapters.modbus.registers import PULSE_STATUS

__all__ = ["SDM_REGISTERS", "PulseTerminal", "SdmDevice", "pulse_image", "sdm_image"]

SDM_REGISTERS = 0x50  # 30001-30080: every value the register maps read
_ = decode_float32  # re-exported for the doctest above


def sdm_image(meter: SimMeter, *, three_phase: bool, t: float) -> list[int]:
    """The input registers 0x00-0x4F of an SDM630 (three-phase) or SDM120 at ``t``."""
    floats = [0.0] * (SDM_REGISTERS // 2)
    forward, reverse = meter.registers(t)
    power_w = meter.power_kw(t) * 1000
    volts = meter.voltage(t)
    pf = -0.95 if power_w < 0 else 0.95
    phases = 3 if three_phase else 1
    per_phase = power_w / phases
    for i in range(phases):
        v = volts + 0.4 * i
        floats[0 + i] = v
        floats[3 + i] = abs(per_phase) / (v * 0.95)
        floats[6 + i] = per_phase
        floats[15 + i] = pf
    if three_phase:
        floats[0x34 // 2] = power_w
    else:
        floats[0x12 // 2] = abs(power_w) / 0.95  # VA
        floats[0x18 // 2] = abs(power_w) * 0.329  # VAr
    floats[0x46 // 2] = 50.0
    floats[0x48 // 2] = forward[0]
    floats[0x4A // 2] = reverse[0]
    return encode_float32(floats)


def pulse_image(channels: list[SimMeter | None], constants: list[int], *, t: float) -> list[int]:
    """Holding registers 0x00-0x10 of a pulse terminal: counters and the wire-break mask."""
    counters: list[int] = []
    status = 0
    for index, (meter, constant) in enumerate(zip(channels, constants, strict=True)):
        if meter is None:
            counters.append(0)
            continue
        counters.append(int(meter.registers(t)[0][0] * constant) % COUNTER_MODULUS)
        if meter.active(Fault.WIRE_BREAK, t):
            status |= 1 << index
    registers = encode_uint32(counters)
    assert len(registers) == PULSE_STATUS
    return [*registers, status]


@dataclass(slots=True)
class SdmDevice:
    """An SDM630 or SDM120 on the line at ``unit``."""

    unit: int
    meter: SimMeter
    three_phase: bool

    @property
    def meters(self) -> list[SimMeter]:
        return [self.meter]

    def image(self, t: float) -> list[int]:
        return sdm_image(self.meter, three_phase=self.three_phase, t=t)


@dataclass(slots=True)
class PulseTerminal:
    """An 8-channel pulse terminal at ``unit``; unused channels are None."""

    unit: int
    channels: list[SimMeter | None] = field(default_factory=lambda: [None] * 8)
    constants: list[int] = field(default_factory=lambda: [1000] * 8)

    @property
    def meters(self) -> list[SimMeter]:
        return [m for m in self.channels if m is not None]

    def image(self, t: float) -> list[int]:
        return pulse_image(self.channels, self.constants, t=t)


def comm_faults(device: SdmDevice | PulseTerminal) -> set[Fault]:
    """Communication faults of a device: a terminal fails when any of its channels does."""
    faults: set[Fault] = set()
    for meter in device.meters:
        faults |= meter.comm & COMM_FAULTS
    return faults
