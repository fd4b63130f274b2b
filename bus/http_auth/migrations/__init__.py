"""Alembic migrations of the HTTP users' tables, run by ``UserStore.open()``.

To add one during development, from the repository root::

    .venv/bin/python -c "from powerbus.bus.http_auth.migrations import MIGRATIONS; \\
        MIGRATIONS.revision('add x')"
"""

from __future__ import annotations

from pathlib import Path

from powerbus.bus.kernel.database import Migrations

__all__ = ["MIGRATIONS"]

MIGRATIONS = Migrations(Path(__file__).resolve().parent, store="http_auth")
