"""The metering core's errors, all in the powerbus tree::

    PowerbusError
    ├── InvalidArgument
    │   └── InvalidReading     a reading VEE or the store cannot take: names the field
    ├── ConfigError
    │   └── InvalidVeeConfig   a VEE threshold is missing or wrong: names the key
    └── StaleOwner             a write or renewal under a fencing token that is no longer
                               the gateway's: another instance owns the line now

None is retriable as such: a stale owner must stop polling the line, not retry.
"""

from __future__ import annotations

from powerbus.bus.kernel.errors import ConfigError, InvalidArgument, PowerbusError
from powerbus.load_balancer.status import StatusCode

__all__ = ["InvalidReading", "InvalidVeeConfig", "StaleOwner"]


class InvalidReading(InvalidArgument):
    """A reading is malformed (naive time, unknown unit, negative register...).

    >>> raise InvalidReading("intervals[3].end", "naive datetime")
    Traceback (most recent call last):
    powerbus.nodes.metering.errors.InvalidReading: intervals[3].end: naive datetime
    """


class InvalidVeeConfig(ConfigError):
    """A VEE threshold is out of range or of the wrong type; the message names the key."""


class StaleOwner(PowerbusError):
    """The fencing token is not the gateway's current one: the lease was lost.

    ABORTED, as for a lost optimistic-concurrency race: the caller's view is out of date.

    >>> raise StaleOwner("gw-1", held=3, current=4)
    Traceback (most recent call last):
    powerbus.nodes.metering.errors.StaleOwner: gateway gw-1: fencing token 3 is stale (current 4)
    """

    status = StatusCode.ABORTED

    def __init__(self, gateway: str, *, held: int, current: int | None) -> None:
        now = "no lease" if current is None else f"current {current}"
        super().__init__(f"gateway {gateway}: fencing token {held} is stale ({now})")
        self.gateway = gateway
        self.held = held
        self.current = current
