"""Alembic migrations of the registry's tables, run by ``Registry.start()``.

To add one during development (from the repository root)::

    .venv/bin/python -c "from powerbus.bus.registry.migrations import revision; revision('add x')"
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config

__all__ = ["revision"]


def revision(message: str) -> None:
    """Write an empty revision file into versions/ for ``message``."""
    from powerbus.bus.registry._database import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    # A module name that is a Python identifier, so linters and mypy read it too.
    config.set_main_option("file_template", "v%%(rev)s_%%(slug)s")
    command.revision(config, message=message)
