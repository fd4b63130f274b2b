"""Whether the registry database is still the one the bus opened, and intact.

SQLite keeps serving a file deleted under it (from the open inode, so every write is
lost) and answers a corrupted one only when a query touches the bad page; the bus checks
both on its own, so ``/healthz`` goes red and says why instead of "ok".

>>> check = DatabaseCheck("sqlite:///nowhere/powerbus.db")
>>> check.where
'nowhere/powerbus.db'
>>> check.opened()
>>> check.file_problem()
'the database file nowhere/powerbus.db was deleted'
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

import sqlalchemy as sa

__all__ = ["DatabaseCheck", "reason_of"]

_SQLITE_HEADER = b"SQLite format 3\x00"


def reason_of(error: BaseException) -> str:
    """The driver's first line, never the SQL statement or SQLAlchemy's help link."""
    original = getattr(error, "orig", None) or error
    text = str(original).strip().splitlines()
    return text[0] if text else type(original).__name__


class DatabaseCheck:
    """Checks one database URL: the file (SQLite) and its integrity."""

    def __init__(self, db_url: str) -> None:
        self.where = db_url
        self._path: str | None = None
        self._inode: tuple[int, int] | None = None
        try:
            url = sa.make_url(db_url)
        except sa.exc.ArgumentError:
            return  # not a URL: creating the engine says so, naming the setting
        self.where = url.render_as_string(hide_password=True)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            self._path = self.where = str(url.database)

    @property
    def is_file(self) -> bool:
        return self._path is not None

    def opened(self) -> None:
        """Remember which file the bus opened (call once it is open)."""
        if self._path is not None:
            try:
                stat = os.stat(self._path)
            except OSError:
                return
            self._inode = (stat.st_dev, stat.st_ino)

    def file_problem(self) -> str | None:
        """What is wrong with the file, if anything (cheap: a ``stat`` and its header, which
        in WAL mode SQLite itself may not reread for a long time)."""
        if self._path is None:
            return None
        try:
            stat = os.stat(self._path)
        except FileNotFoundError:
            return f"the database file {self._path} was deleted"
        except OSError as exc:
            return f"the database file {self._path}: {exc.strerror}"
        if self._inode is not None and (stat.st_dev, stat.st_ino) != self._inode:
            return f"the database file {self._path} was replaced"
        try:
            with open(self._path, "rb") as file:
                header = file.read(len(_SQLITE_HEADER))
        except OSError as exc:
            return f"the database file {self._path}: {exc.strerror}"
        if header != _SQLITE_HEADER and (header or stat.st_size):
            return f"the database file {self._path} is damaged: not a SQLite database any more"
        return None

    def integrity_problem(self) -> str | None:
        """SQLite's ``quick_check`` on a connection of its own (pooled ones keep pages
        cached, and in WAL mode do not reread the file's header); None when it says ok
        (or the database is not a SQLite file)."""
        if self._path is None:
            return None
        uri = f"{Path(self._path).resolve().as_uri()}?mode=ro"
        try:
            with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as conn:
                found = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
        except sqlite3.Error as exc:
            return f"the database file {self._path} is damaged: {reason_of(exc)}"
        if found != "ok":
            return f"the database file {self._path} is damaged: {found}"
        return None
