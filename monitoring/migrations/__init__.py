"""Alembic migrations of the monitoring tables, run by ``Monitoring.start()``.

To add one during development (from the repository root)::

    .venv/bin/python -c "from powerbus.monitoring.migrations import revision; revision('add x')"
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config

__all__ = ["revision"]


def revision(message: str) -> None:
    """Write an empty revision file into versions/ for ``message``."""
    from powerbus.monitoring.database import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("file_template", "m%%(rev)s_%%(slug)s")
    command.revision(config, message=message)
