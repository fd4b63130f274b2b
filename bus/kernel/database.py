"""Database engines for the bus's stores: creating one from a URL, transactions, migrations.

The registry and monitoring each keep their tables and Alembic history of their own, on
the same database URL; this module is the part they share.

SQLite gets two adjustments. Python's sqlite3 would start transactions lazily, so two
writers that both read first deadlock into "database is locked"; instead SQLAlchemy
emits BEGIN itself, ``BEGIN IMMEDIATE`` for writes so they queue on the lock from the
start. WAL lets the poller read while another process writes. And once an engine has
opened its file, later connections open it read-write without creating it: a file deleted
under a running bus must fail its writes, not have a fresh empty database take its place.

>>> engine = create_engine("sqlite://")
>>> with write_transaction(engine) as conn:
...     _ = conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
>>> with read_transaction(engine) as conn:
...     conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one()
0
>>> engine.dispose()
"""

from __future__ import annotations

import hashlib
import itertools
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.pool import StaticPool
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random_exponential

from powerbus.bus.kernel.errors import ConfigError

__all__ = [
    "IN_LIST_SIZE",
    "Migrations",
    "UtcDateTime",
    "chunked",
    "conflict_insert",
    "create_engine",
    "read_transaction",
    "write_transaction",
]

T = TypeVar("T")

_WRITE = "powerbus_write"
# A single shared connection (in-memory SQLite) must not be used by two threads at once.
_SERIAL = "powerbus_serial_lock"
_WAL_SWITCH_S = 10.0
_SQLITE_BUSY_S = 30.0

IN_LIST_SIZE = 400
"""Values per ``IN (...)`` list or multi-value statement: two bound parameters each stay
well under SQLite's 999."""


def create_engine(db_url: str, *, pool_size: int | None = None) -> Engine:
    """An engine for ``db_url`` (any SQLAlchemy URL; ``sqlite://`` is in memory).

    ``pool_size`` bounds the connections of a server database (SQLAlchemy's default if
    ``None``); SQLite always gets the set-up described at the top of this module.
    """
    try:
        url = sa.make_url(db_url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"db: not a database URL: {db_url!r} ({exc})") from None
    if url.get_backend_name() != "sqlite":
        try:
            sizing = (
                {} if pool_size is None else {"pool_size": pool_size, "max_overflow": pool_size}
            )
            return sa.create_engine(url, pool_pre_ping=True, **sizing)
        except (ImportError, sa.exc.ArgumentError) as exc:
            raise ConfigError(f"db: cannot use {url.drivername!r}: {exc}") from None
    memory = url.database in (None, "", ":memory:")
    # SQLite has one writer at a time; the others wait up to this long for the lock. The
    # driver's 5 s was too short for a metering node storing 500 lines' polls at once.
    kwargs: dict[str, Any] = {"connect_args": {"timeout": _SQLITE_BUSY_S}}
    if memory:
        kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    engine = sa.create_engine(url, **kwargs)
    _take_over_sqlite_transactions(engine, wal=not memory)
    if not memory:
        _never_recreate(engine, str(url.database))
    if memory:
        engine.update_execution_options(**{_SERIAL: threading.Lock()})
    return engine


def _take_over_sqlite_transactions(engine: Engine, *, wal: bool) -> None:
    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        if wal:
            _use_wal(dbapi_connection)

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _never_recreate(engine: Engine, path: str) -> None:
    uri = f"{Path(path).resolve().as_uri()}?mode=rw"
    opened = threading.Event()

    @sa.event.listens_for(engine, "do_connect")
    def _do_connect(
        _dialect: Dialect, _record: Any, cargs: list[Any], cparams: dict[str, Any]
    ) -> None:
        if opened.is_set() and not cparams.get("uri"):
            cargs[:1] = [uri]
            cparams["uri"] = True

    @sa.event.listens_for(engine, "connect")
    def _connect(_dbapi_connection: Any, _record: Any) -> None:
        opened.set()


def _use_wal(dbapi_connection: Any) -> None:
    """Put the file in WAL mode, which it keeps once set.

    Switching needs the file to itself, and SQLite answers "locked" at once, without its busy
    wait, while another connection works on it, as when several bus instances start on one
    fresh file together: so only when not WAL yet, and again after a short pause.
    """
    for attempt in Retrying(
        stop=stop_after_delay(_WAL_SWITCH_S),
        wait=wait_random_exponential(multiplier=0.01, max=0.5),
        retry=retry_if_exception(_locked),
        reraise=True,
    ):
        with attempt:
            (mode,) = dbapi_connection.execute("PRAGMA journal_mode").fetchone()
            if str(mode).lower() != "wal":
                dbapi_connection.execute("PRAGMA journal_mode=WAL")


def _locked(error: BaseException) -> bool:
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


@contextmanager
def read_transaction(engine: Engine, *, snapshot: bool = False) -> Iterator[Connection]:
    """A read-only transaction; ``snapshot`` makes every statement see the same state."""
    with _serial(engine), engine.connect() as conn:
        if snapshot and conn.dialect.name != "sqlite":
            # SQLite transactions are snapshots already; PostgreSQL's default is not.
            conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: commits on success, rolls back on error."""
    with _serial(engine), engine.connect() as conn:
        conn.execution_options(**{_WRITE: True})
        with conn.begin():
            yield conn


def chunked(items: Iterable[T], size: int = IN_LIST_SIZE) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last shorter): bounded IN lists, statements
    and transactions. ``itertools.batched`` arrived only in Python 3.12.

    >>> [len(c) for c in chunked(range(5), 2)]
    [2, 2, 1]
    """
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def conflict_insert(conn: Connection, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into ``table`` that can say ``ON CONFLICT`` (both databases we run on
    have it; plain SQL has no portable spelling). Writers racing on the same key need it:
    an update-then-insert loses to another instance's insert in between."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise ConfigError(f"unsupported database {conn.dialect.name!r}: use PostgreSQL or SQLite")


def _serial(engine: Engine) -> Any:
    lock = engine.get_execution_options().get(_SERIAL)
    return lock if lock is not None else nullcontext()


@dataclass(frozen=True)
class Migrations:
    """One Alembic history of one store's tables, beside other stores' in the same database.

    Each store has its own version table and its own PostgreSQL advisory lock (bus
    instances starting together take turns instead of racing on CREATE TABLE), and its
    autogenerate sees only its own tables.

    >>> from pathlib import Path
    >>> m = Migrations(Path("migrations"), store="events")
    >>> m.version_table
    'events_alembic_version'
    """

    script_location: Path
    store: str
    """The store's name (``registry``, ``monitoring``)."""

    @property
    def version_table(self) -> str:
        return f"{self.store}_alembic_version"

    @property
    def lock_key(self) -> int:
        # Stable across processes (unlike hash()), and a positive bigint.
        return int.from_bytes(hashlib.sha256(self.store.encode()).digest()[:8], "big") >> 1

    def run(self, engine: Engine, *, revision: str = "head") -> None:
        """Upgrade the store's tables to the newest revision (safe to run every start);
        tests migrating data give an older ``revision`` to build the tables as they were."""
        config = self._config()
        with write_transaction(engine) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": self.lock_key})
            config.attributes["connection"] = conn
            config.attributes["migrations"] = self
            command.upgrade(config, revision)

    def configure(self, context: Any, metadata: sa.MetaData) -> None:
        """What a store's ``env.py`` does: migrate on the connection :meth:`run` opened,
        with this store's version table, touching only this store's tables."""
        connection = context.config.attributes.get("connection")
        if connection is None or context.is_offline_mode():
            raise RuntimeError(f"{self.store} migrations run from Migrations.run")
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table=self.version_table,
            # SQLite cannot ALTER most things; batch mode copies the table instead.
            render_as_batch=connection.dialect.name == "sqlite",
            # Other stores' tables share the database: leave them out of comparisons.
            include_name=lambda name, type_, _parent: type_ != "table" or name in metadata.tables,
        )
        with context.begin_transaction():
            context.run_migrations()

    def revision(self, message: str) -> None:
        """Write an empty revision file into versions/ for ``message`` (development)."""
        config = self._config()
        # A module name that is a Python identifier, so linters and mypy read it too.
        config.set_main_option("file_template", "v%%(rev)s_%%(slug)s")
        command.revision(config, message=message)

    def _config(self) -> Config:
        config = Config()
        config.set_main_option("script_location", str(self.script_location).replace("%", "%%"))
        return config


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, also on SQLite (which stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: stores keep UTC")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)
