"""Faults of the registry database the bus notices (issue 14, defect 3): ``/healthz`` goes
red and says why, clients get one line (never SQL), start-up errors name the file."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import sqlalchemy as sa

from powerbus.bus.kernel.database import create_engine, read_transaction, write_transaction

POWERBUS = [sys.executable, "-m", "powerbus.bus"]


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*POWERBUS, *args], capture_output=True, text=True, timeout=timeout)


def healthz(http: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://{http}/healthz", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def await_healthz(http: str, status: int, *, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while (found := healthz(http))[0] != status:
        assert time.monotonic() < deadline, found
        time.sleep(0.2)
    return found[1]


def test_a_deleted_database_file_turns_healthz_red(bus_factory, tmp_path):
    path = tmp_path / "registry.db"
    bus = bus_factory(db=f"sqlite:///{path}")
    assert healthz(bus.http) == (200, "ok\n")
    path.unlink()
    body = await_healthz(bus.http, 503)
    assert body == f"registry database: the database file {path} was deleted\n"


def test_an_engine_never_recreates_its_deleted_file(tmp_path):
    """The race behind the test above: a pooled connection opened after the delete must
    fail, not create an empty database in its place that "replaces" the lost one."""
    path = tmp_path / "registry.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        with write_transaction(engine) as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        engine.dispose()  # the next statement needs a new connection
        path.unlink()
        gone = pytest.raises(sa.exc.OperationalError, match="unable to open database file")
        with gone, read_transaction(engine) as conn:
            conn.exec_driver_sql("SELECT count(*) FROM t")
        assert not path.exists()
    finally:
        engine.dispose()


def test_a_corrupted_database_is_red_and_clients_get_one_line(bus_factory, tmp_path):
    path = tmp_path / "registry.db"
    bus = bus_factory(db=f"sqlite:///{path}")
    with contextlib.closing(sqlite3.connect(path)) as conn:  # the WAL's pages into the file
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = path.stat().st_size
    with open(path, "r+b") as damaged:  # same file, same inode: garbage all through
        damaged.write(os.urandom(size))
    body = await_healthz(bus.http, 503)
    assert body.startswith(f"registry database: the database file {path} is damaged: ")
    result = run(
        "policy",
        "set",
        "powerbus.echo.v1.Echo",
        "retry.max_attempts=2",
        "--bus",
        bus.grpc,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "the registry database is unavailable" in lines[0]
    for leak in ("SELECT", "INSERT", "sqlalche.me", "[SQL", "Traceback"):
        assert leak not in result.stderr


def test_a_garbage_db_file_is_a_one_line_start_up_error_naming_it(tmp_path):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(8192))
    result = run(
        "bus", "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--db", f"sqlite:///{garbage}"
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {garbage}: the registry database is unavailable: file is not a database"
    ]


def test_a_config_file_that_is_not_utf8_is_a_one_line_error_naming_it(tmp_path):
    config = tmp_path / "bus.toml"
    config.write_bytes(b'[bus]\nzone = "\xff"\n')
    result = run("bus", "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--config", str(config))
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {config}: not UTF-8 text")
