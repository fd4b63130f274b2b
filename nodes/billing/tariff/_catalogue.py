"""A catalogue of tariffs: every version of every tariff, looked up by id and date."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cache
from pathlib import Path
from types import MappingProxyType

from powerbus.nodes.billing.tariff._errors import InvalidTariff, TariffNotFound
from powerbus.nodes.billing.tariff._files import load_tariff_file
from powerbus.nodes.billing.tariff._model import Tariff

__all__ = ["SHIPPED_DIRECTORY", "TariffCatalogue", "load_shipped"]

SHIPPED_DIRECTORY = Path(__file__).resolve().parent.parent / "tariffs"


@dataclass(frozen=True)
class TariffCatalogue:
    """Immutable: :meth:`put` returns a new catalogue, so a node can swap it atomically.

    >>> catalogue = load_shipped()
    >>> catalogue.version("cn-zhejiang-residential", date(2026, 3, 1)).energy_price
    Decimal('0.538')
    """

    by_id: Mapping[str, tuple[Tariff, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_id", MappingProxyType(dict(self.by_id)))

    @classmethod
    def of(cls, versions: Iterable[Tariff]) -> TariffCatalogue:
        """A catalogue of ``versions`` (any order); the same (id, effective_from) twice is
        refused."""
        catalogue = cls()
        for tariff in versions:
            if any(
                v.effective_from == tariff.effective_from
                for v in catalogue.by_id.get(tariff.tariff_id, ())
            ):
                raise InvalidTariff(
                    tariff.tariff_id, "effective_from", f"{tariff.effective_from} given twice"
                )
            catalogue = catalogue.put(tariff)
        return catalogue

    @classmethod
    def load_directory(cls, directory: str | os.PathLike[str]) -> TariffCatalogue:
        """Every ``*.toml`` tariff file in ``directory``."""
        files = sorted(Path(directory).glob("*.toml"))
        return cls.of(v for path in files for v in load_tariff_file(path))

    def put(self, tariff: Tariff) -> TariffCatalogue:
        """A catalogue with ``tariff`` added, replacing the version of the same
        (tariff_id, effective_from): PutTariff."""
        kept = [
            v
            for v in self.by_id.get(tariff.tariff_id, ())
            if v.effective_from != tariff.effective_from
        ]
        versions = tuple(sorted([*kept, tariff], key=lambda v: v.effective_from))
        return replace(self, by_id={**self.by_id, tariff.tariff_id: versions})

    def ids(self) -> list[str]:
        """Tariff ids, sorted."""
        return sorted(self.by_id)

    def versions(self, tariff_id: str) -> tuple[Tariff, ...]:
        """Every version of a tariff, oldest first; :class:`TariffNotFound` if none."""
        try:
            return self.by_id[tariff_id]
        except KeyError:
            raise TariffNotFound(f"no tariff {tariff_id!r}") from None

    def version(self, tariff_id: str, day: date) -> Tariff:
        """The version of ``tariff_id`` in force on ``day``: the newest one that started on
        or before it, unless that one ended already."""
        for tariff in reversed(self.versions(tariff_id)):
            if tariff.effective_from <= day:
                if tariff.effective_on(day):
                    return tariff
                break
        raise TariffNotFound(f"tariff {tariff_id!r} has no version in force on {day}")


@cache
def load_shipped() -> TariffCatalogue:
    """The tariffs shipped in ``powerbus/nodes/billing/tariffs``, read once."""
    return TariffCatalogue.load_directory(SHIPPED_DIRECTORY)
