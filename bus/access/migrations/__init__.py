"""Alembic migrations of the access store's tables, run by ``AccessStore.open()``.

To add one during development, from the repository root::

    .venv/bin/python -c "from powerbus.bus.access.migrations import MIGRATIONS; \\
        MIGRATIONS.revision('add x')"
"""

from __future__ import annotations

from pathlib import Path

from powerbus.bus.kernel.database import Migrations

__all__ = ["MIGRATIONS"]

MIGRATIONS = Migrations(Path(__file__).resolve().parent, store="access")
