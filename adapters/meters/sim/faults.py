"""Faults the simulator can inject, and the ``--faults`` spec that names them.

Spec: ``METER=FAULT[:ARG][,FAULT[:ARG]...]`` items separated by ``;``, e.g.
``M00003=no-answer;M00010=garbage;M00042=clock-jump:-600,reverse``. ``clock-jump`` takes
seconds (default 3600); other faults take no argument.

>>> [(f.meter, f.fault.value, f.arg) for f in parse_faults("M1=no-answer;M2=clock-jump:-600")]
[('M1', 'no-answer', None), ('M2', 'clock-jump', -600.0)]
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from powerbus.bus.kernel.errors import InvalidArgument

__all__ = ["COMM_FAULTS", "Fault", "FaultSpec", "parse_faults"]


class Fault(str, Enum):
    """What can go wrong with one meter."""

    NO_ANSWER = "no-answer"  # the meter stays silent
    EXCEPTION = "exception"  # Modbus exception 04 / DL/T 645 abnormal reply
    GARBAGE = "garbage"  # the reply is noise of the same length
    FROZEN = "frozen"  # registers stop advancing (stuck value)
    ROLLOVER = "rollover"  # total register set just below its modulus: it wraps soon
    RESET = "reset"  # meter replaced: registers restart from zero
    REVERSE = "reverse"  # energy flows back: counted in the reverse register
    CLOCK_JUMP = "clock-jump"  # the meter's clock jumps by ARG seconds
    WIRE_BREAK = "wire-break"  # pulse channel: no pulses counted, wire-break bit set


COMM_FAULTS = frozenset({Fault.NO_ANSWER, Fault.EXCEPTION, Fault.GARBAGE})


@dataclass(frozen=True, slots=True)
class FaultSpec:
    meter: str
    fault: Fault
    arg: float | None = None


def parse_faults(text: str) -> list[FaultSpec]:
    """Parse a ``--faults`` spec; errors name the bad item."""
    specs: list[FaultSpec] = []
    for item in filter(None, (part.strip() for part in text.split(";"))):
        meter, sep, faults = item.partition("=")
        if not sep or not meter.strip() or not faults.strip():
            raise InvalidArgument("--faults", f"want METER=FAULT, got {item!r}")
        for entry in faults.split(","):
            name, _, arg = entry.strip().partition(":")
            try:
                fault = Fault(name)
            except ValueError:
                known = ", ".join(f.value for f in Fault)
                problem = f"unknown fault {name!r}; known: {known}"
                raise InvalidArgument("--faults", problem) from None
            try:
                value = float(arg) if arg else None
            except ValueError:
                raise InvalidArgument("--faults", f"bad argument in {entry!r}") from None
            specs.append(FaultSpec(meter.strip(), fault, value))
    return specs
