"""Stored tariff versions layered over the shipped catalogue: what PutTariff writes and
Quote, GetTariff, ListTariffs and billing runs read.

A stored version replaces the shipped one with the same ``(tariff_id, effective_from)``.
Every read builds the catalogue from the database, so several billing nodes on one
database agree at once; the table is small (tariffs, not bills).
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from powerbus.bus.kernel.database import read_transaction, write_transaction
from powerbus.nodes.billing.store import tariffs as tariffs_table
from powerbus.nodes.billing.tariff import (
    Tariff,
    TariffCatalogue,
    load_shipped,
    tariff_from_dict,
    tariff_to_dict,
)

__all__ = ["TariffBook"]


class TariffBook:
    """The tariffs a billing node prices with.

    >>> from powerbus.bus.kernel.database import create_engine
    >>> from powerbus.nodes.billing.store.migrations import MIGRATIONS
    >>> engine = create_engine("sqlite://"); MIGRATIONS.run(engine)
    >>> book = TariffBook(engine)
    >>> "cn-beijing-residential" in book.catalogue().ids()
    True
    >>> engine.dispose()
    """

    def __init__(self, engine: Engine, *, shipped: TariffCatalogue | None = None) -> None:
        self._engine = engine
        self._shipped = load_shipped() if shipped is None else shipped

    def catalogue(self) -> TariffCatalogue:
        """Shipped tariffs with every stored version put over them."""
        with read_transaction(self._engine) as conn:
            rows = conn.execute(sa.select(tariffs_table.c.tariff_id, tariffs_table.c.body))
            stored = [
                tariff_from_dict(body, source=f"stored tariff {tariff_id}")
                for tariff_id, body in rows
            ]
        catalogue = self._shipped
        for version in stored:
            catalogue = catalogue.put(version)
        return catalogue

    def put(self, tariff: Tariff) -> Tariff:
        """Store one version (replacing the one with the same id and start date); already
        issued bills keep their lines, which are stored with them."""
        body = tariff_to_dict(tariff)
        body["effective_from"] = tariff.effective_from.isoformat()
        if tariff.effective_to is not None:
            body["effective_to"] = tariff.effective_to.isoformat()
        key = (tariffs_table.c.tariff_id == tariff.tariff_id) & (
            tariffs_table.c.effective_from == tariff.effective_from
        )
        with write_transaction(self._engine) as conn:
            conn.execute(sa.delete(tariffs_table).where(key))
            conn.execute(
                sa.insert(tariffs_table).values(
                    tariff_id=tariff.tariff_id,
                    effective_from=tariff.effective_from,
                    body=body,
                    stored_at=datetime.now(timezone.utc),
                )
            )
        return tariff
