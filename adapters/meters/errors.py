"""Typed errors of meter acquisition; each names the meter and the gateway (line).

::

    PowerbusError
    ├── Unavailable        retriable
    │   ├── GatewayUnreachable      the line's TCP connection cannot be opened or broke
    │   └── FrameError              a reply was garbage, truncated or failed its checksum
    ├── DeadlineExceeded   retriable
    │   └── MeterTimeout            the meter did not answer before the deadline
    └── DeviceRejected              Modbus exception / DL/T 645 abnormal reply
                                    (retriable only for "busy"-type codes)

Third-party exceptions (pymodbus, OSError) are mapped into this tree in one place per
adapter (``powerbus.adapters.modbus.client``, ``powerbus.adapters.dlt645.client``).
"""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

from powerbus.bus.kernel.errors import DeadlineExceeded, PowerbusError, Unavailable

__all__ = [
    "DeviceRejected",
    "FrameError",
    "FrameProblem",
    "GatewayUnreachable",
    "MeterError",
    "MeterTimeout",
]


E = TypeVar("E", bound="MeterError")


class MeterError(PowerbusError):
    """Base of acquisition errors: ``meter`` and ``gateway`` say where it happened.

    >>> error = MeterTimeout(meter="M1", gateway="127.0.0.1:5020", problem="no reply in 0.5s")
    >>> str(error), error.retriable
    ('meter M1 via 127.0.0.1:5020: no reply in 0.5s', True)
    """

    def __init__(self, *, meter: str, gateway: str, problem: str) -> None:
        super().__init__(f"meter {meter} via {gateway}: {problem}")
        self.meter = meter
        self.gateway = gateway
        self.problem = problem

    def for_meter(self: E, meter: str) -> E:
        """The same failure, naming ``meter`` (e.g. another channel of a terminal whose one
        read failed)."""
        # exceptions copy by re-calling __init__ with .args; ours are keyword-only, so
        # build the clone from its attributes instead
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.meter = meter
        clone.message = f"meter {meter} via {self.gateway}: {self.problem}"
        clone.args = (clone.message,)
        return clone


class GatewayUnreachable(MeterError, Unavailable):
    """The gateway's TCP connection could not be opened or was lost."""


class FrameProblem(str, Enum):
    """Why a reply could not be used."""

    GARBAGE = "garbage"
    TRUNCATED = "truncated"
    CHECKSUM = "checksum"
    MISMATCH = "mismatch"


class FrameError(MeterError, Unavailable):
    """A reply arrived but was garbage, truncated, or failed its checksum."""

    def __init__(self, *, meter: str, gateway: str, reason: FrameProblem, problem: str) -> None:
        super().__init__(meter=meter, gateway=gateway, problem=f"{reason.value}: {problem}")
        self.reason = reason


class MeterTimeout(MeterError, DeadlineExceeded):
    """No (usable) answer before the request's deadline."""


class DeviceRejected(MeterError):
    """The meter answered with an error: a Modbus exception code or a DL/T 645 abnormal
    reply (``code`` is the exception code or the error byte)."""

    def __init__(
        self, *, meter: str, gateway: str, code: int, problem: str, retriable: bool = False
    ) -> None:
        super().__init__(meter=meter, gateway=gateway, problem=f"code 0x{code:02X}: {problem}")
        self.code = code
        self.retriable = retriable
