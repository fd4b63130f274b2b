"""Alembic migrations of the payment node's tables, run by ``PaymentNode.on_start``.

To add one during development, from the repository root::

    .venv/bin/python -c "from powerbus.nodes.payment.store.migrations import MIGRATIONS; \\
        MIGRATIONS.revision('add x')"
"""

from __future__ import annotations

from pathlib import Path

from powerbus.bus.kernel.database import Migrations

__all__ = ["MIGRATIONS"]

MIGRATIONS = Migrations(Path(__file__).resolve().parent, store="payment")
