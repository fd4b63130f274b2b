"""The tariff engine's errors, all in the powerbus tree::

    PowerbusError
    ├── InvalidArgument
    │   ├── InvalidTariff      a tariff file or PutTariff is wrong: names source, field, reason
    │   └── InvalidUsage       usage a tariff cannot price: names the field
    └── NotFound
        └── TariffNotFound     no such tariff, or no version in force on the date

None is retriable: the same input fails the same way.
"""

from __future__ import annotations

from powerbus.bus.kernel.errors import InvalidArgument, NotFound

__all__ = ["InvalidTariff", "InvalidUsage", "TariffNotFound"]


class InvalidTariff(InvalidArgument):
    """A tariff is refused; the message is ``"<source>: <field>: <reason>"``.

    >>> raise InvalidTariff("x.toml", "tiers[1].up_to_kwh", "not above 240")
    Traceback (most recent call last):
    powerbus.nodes.billing.tariff._errors.InvalidTariff: x.toml: tiers[1].up_to_kwh: not above 240
    """

    def __init__(self, source: str, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.message = f"{source}: {field}: {reason}"
        self.args = (self.message,)
        self.source = source
        self.reason = reason


class InvalidUsage(InvalidArgument):
    """Usage the tariff cannot price (a negative quantity, a TOU period it has no price
    for, a two-part tariff without its demand basis); the message starts with the field."""


class TariffNotFound(NotFound):
    """No tariff has the id, or none of its versions is in force on the date."""
