"""Reads one table of a tariff dict, turning every problem into an :class:`InvalidTariff`
that names the source, the field's path (``versions[0].tiers[1].up_to_kwh``) and why."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, TypeVar

from powerbus.nodes.billing.tariff._errors import InvalidTariff
from powerbus.nodes.billing.tariff._model import MINUTES_PER_DAY

__all__ = ["Reader"]

E = TypeVar("E", bound=Enum)
T = TypeVar("T")


class Reader:
    """One table being read; :meth:`done` refuses the fields nothing asked for."""

    def __init__(self, data: object, source: str, path: str) -> None:
        if not isinstance(data, Mapping):
            raise InvalidTariff(source, path or "(top)", "must be a table")
        self.data: Mapping[str, Any] = data
        self.source = source
        self.path = path
        self.used: set[str] = set()

    def field(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, reason: str) -> InvalidTariff:
        return InvalidTariff(self.source, self.field(key), reason)

    def raw(self, key: str, *, required: bool) -> Any:
        self.used.add(key)
        if key not in self.data:
            if required:
                raise self.fail(key, "missing")
            return None
        return self.data[key]

    def text(self, key: str, *, required: bool = True) -> str:
        value = self.raw(key, required=required)
        if value is None:
            return ""
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, not {value!r}")
        return value

    def decimal(self, key: str, *, required: bool = False) -> Decimal | None:
        value = self.raw(key, required=required)
        if value is None:
            return None
        # bool is an int: refuse it explicitly; floats are refused because 0.1 is inexact.
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.fail(key, f'must be a decimal string such as "0.4883", not {value!r}')
        try:
            number = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation:
            raise self.fail(key, f"not a decimal: {value!r}") from None
        if not number.is_finite():
            raise self.fail(key, f"not a finite decimal: {value!r}")
        return number

    def integer(self, key: str, *, default: int) -> int:
        value = self.raw(key, required=False)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer, not {value!r}")
        return value

    def flag(self, key: str) -> bool:
        value = self.raw(key, required=False)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, not {value!r}")
        return value

    def day(self, key: str, *, required: bool) -> date | None:
        value = self.raw(key, required=required)
        if value is None or (isinstance(value, date) and not hasattr(value, "hour")):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise self.fail(key, f"must be a date such as 2026-01-01, not {value!r}")

    def enum(self, key: str, kind: type[E], *, required: bool = True) -> E | None:
        value = self.raw(key, required=required)
        if value is None:
            return None
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in kind)
            raise self.fail(key, f"{value!r} is not one of {allowed}") from None

    def months(self) -> tuple[int, ...]:
        value = self.raw("months", required=False)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(
            isinstance(m, int) and not isinstance(m, bool) and 1 <= m <= 12 for m in value
        ):
            raise self.fail("months", f"must be a list of months 1-12, not {value!r}")
        if len(set(value)) != len(value):
            raise self.fail("months", f"lists a month twice: {value!r}")
        return tuple(value)

    def minute(self, key: str) -> int:
        value = self.text(key)
        hours, sep, minutes = value.partition(":")
        if not (sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
            raise self.fail(key, f'must be a time "HH:MM", not {value!r}')
        total = int(hours) * 60 + int(minutes)
        if int(minutes) >= 60 or total > MINUTES_PER_DAY:
            raise self.fail(key, f"not a time of day: {value!r}")
        return total % MINUTES_PER_DAY

    def rows(self, key: str, read: Callable[[Reader], T]) -> tuple[T, ...]:
        value = self.raw(key, required=False)
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail(key, "must be a list of tables")
        return tuple(self.nested(f"{key}[{i}]", row, read) for i, row in enumerate(value))

    def nested(self, key: str, data: object, read: Callable[[Reader], T]) -> T:
        reader = Reader(data, self.source, self.field(key))
        result = read(reader)
        reader.done()
        return result

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.fail(unknown[0], "unknown field")
