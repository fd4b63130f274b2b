"""Alembic migrations of the SDK's event tables (outbox, positions), run by
``open_event_tables``; a history of their own beside the node's other tables.
"""

from __future__ import annotations

from pathlib import Path

from powerbus.bus.kernel.database import Migrations

__all__ = ["MIGRATIONS"]

MIGRATIONS = Migrations(Path(__file__).resolve().parent, store="events_client")
