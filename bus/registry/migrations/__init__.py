"""Alembic migrations of the registry's tables, run by ``Registry.start()``.

To add one during development, from the repository root::

    .venv/bin/python -c "from powerbus.bus.registry.migrations import MIGRATIONS; \\
        MIGRATIONS.revision('add x')"
"""

from __future__ import annotations

from pathlib import Path

from powerbus.bus.kernel.database import Migrations

__all__ = ["MIGRATIONS"]

MIGRATIONS = Migrations(Path(__file__).resolve().parent, store="registry")
