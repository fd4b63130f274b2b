"""Each stage of the events path alone, to find what limits the forwarder's figure.

Run by ``benchmarks.events`` in the same run as the end-to-end rounds:

- ``publisher_send``: the Python publisher's send loop into a PUB socket with no peer
  (libzmq drops at once), per message (two ``send`` calls) and with ``send_multipart``;
- ``capture``: the forwarder's own capture code (``Forwarder._drain``) over an inproc
  pipe filled beforehand, so it is the parsing and batching alone;
- ``store``: ``EventStore.write`` of the captured batches into a fresh SQLite file (and
  into PostgreSQL, a schema of its own, with ``store_postgres``), and
  the same envelopes as a row each (the schema before runs: primary key (source,
  sequence) and the time index) through ``sqlite3.executemany`` with nothing of powerbus
  (that schema's floor on this machine, which no row-per-envelope store could pass),
  with the bus's setting (WAL, synchronous FULL) and with synchronous NORMAL (what fsync
  per batch costs);

and what the processes of a round spent in CPU per event (``cpu_s``, ``cpu_summary``).
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import zmq

from benchmarks.harness import postgres_schema
from powerbus.bus.events.batch import EnvelopeBatch
from powerbus.bus.events.forwarder import Forwarder, ForwarderSettings
from powerbus.bus.events.store import EventStore
from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.event_runs import run_frame

__all__ = ["cpu_s", "cpu_summary", "stages"]

Frames = list[tuple[bytes, bytes]]


def messages(frames: Frames, per_message: int) -> list[list[bytes]]:
    """``frames`` as messages ``[topic, frame]`` of ``per_message`` envelopes, a run in
    one frame as the SDK publisher packs it (``run_frame``)."""
    out = []
    for at in range(0, len(frames), per_message):
        raws = [raw for _topic, raw in frames[at : at + per_message]]
        out.append([frames[at][0], run_frame(raws) if len(raws) > 1 else raws[0]])
    return out


def publisher_send(frames: Frames) -> dict[str, int]:
    context = zmq.Context()
    sock = context.socket(zmq.PUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind("tcp://127.0.0.1:*")
    try:
        send, more = sock.send, zmq.SNDMORE
        started = time.perf_counter()
        for topic, raw in frames:
            send(topic, more)
            send(raw)
        two_sends = time.perf_counter() - started
        send_multipart = sock.send_multipart
        started = time.perf_counter()
        for pair in frames:
            send_multipart(pair, zmq.NOBLOCK)
        multipart = time.perf_counter() - started
    finally:
        sock.close()
        context.term()
    n = len(frames)
    return {
        "publisher_send_per_s": round(n / two_sends),
        "publisher_send_multipart_per_s": round(n / multipart),
    }


def capture(
    frames: Frames, settings: ForwarderSettings, per_message: int = 1
) -> tuple[float, list[EnvelopeBatch]]:
    """Events/s of the forwarder's capture code alone over messages of ``per_message``
    envelopes, and the batches it made."""
    forwarder = Forwarder(
        events_in=HostPort("127.0.0.1", 0),
        events_out=HostPort("127.0.0.1", 0),
        store=None,  # type: ignore[arg-type]  # _drain never touches the store
        settings=settings,
    )
    context = zmq.Context()
    push, pull = context.socket(zmq.PUSH), context.socket(zmq.PULL)
    for sock in (push, pull):
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM if sock is push else zmq.RCVHWM, 0)
    push.bind("inproc://stage-capture")
    pull.connect("inproc://stage-capture")
    batches: list[EnvelopeBatch] = []
    try:
        for message in messages(frames, per_message):
            push.send_multipart(message)
        started = time.perf_counter()
        done = 0
        while done < len(frames):
            batch = EnvelopeBatch()
            forwarder._drain(pull, batch)
            if not batch:
                break
            done += len(batch)
            batches.append(batch)
        elapsed = time.perf_counter() - started
    finally:
        push.close()
        pull.close()
        context.term()
    return round(done / elapsed), batches


_ROW_TABLE = (
    "CREATE TABLE events_log (source VARCHAR(128), sequence BIGINT, topic VARCHAR(200),"
    " published_us BIGINT, stored_ms BIGINT, envelope BLOB, PRIMARY KEY (source, sequence))"
)
_ROW_INDEX = "CREATE INDEX ix_events_log_stored_ms ON events_log (stored_ms)"
_ROW_INSERT = "INSERT OR IGNORE INTO events_log VALUES (?, ?, ?, ?, ?, ?)"


def _rows(batch: EnvelopeBatch) -> list[tuple[str, int, str, int, int, bytes]]:
    return list(
        zip(
            batch.sources,
            batch.sequences,
            batch.topics,
            batch.published_us,
            [1] * len(batch),
            batch.envelopes,
            strict=True,
        )
    )


def store_write(batches: list[EnvelopeBatch], path: Path) -> int:
    """Events/s of ``EventStore.write`` of ``batches`` into a fresh SQLite file."""
    n = sum(len(b) for b in batches)
    events = EventStore.open(f"sqlite:///{path}")
    try:
        started = time.perf_counter()
        for batch in batches:
            events.write(batch)
        return round(n / (time.perf_counter() - started))
    finally:
        events.close()


def store(batches: list[EnvelopeBatch], work: Path) -> dict[str, int]:
    n = sum(len(b) for b in batches)
    out = {"store_write_per_s": store_write(batches, work / "stage-store.db")}
    for name, pragma in (("full", "FULL"), ("normal", "NORMAL")):
        path = work / f"stage-floor-{name}.db"
        EventStore.open(f"sqlite:///{path}").close()  # the bus's settings (WAL)
        rows = [_rows(b) for b in batches]  # built before the clock
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute(_ROW_TABLE)
            conn.execute(_ROW_INDEX)
            conn.execute(f"PRAGMA synchronous={pragma}")
            started = time.perf_counter()
            for chunk in rows:
                conn.execute("BEGIN")
                conn.executemany(_ROW_INSERT, chunk)
                conn.execute("COMMIT")
            out[f"sqlite_floor_sync_{name}_per_s"] = round(n / (time.perf_counter() - started))
        finally:
            conn.close()
    return out


def store_postgres(batches: list[EnvelopeBatch]) -> dict[str, int | str]:
    """``EventStore.write`` into PostgreSQL (binary COPY into a staging table, then one
    insert-or-ignore), in a schema of its own; the error instead when there is no server."""
    n = sum(len(b) for b in batches)
    try:
        with postgres_schema("powerbus_bench_events") as url:
            events = EventStore.open(url)
            try:
                started = time.perf_counter()
                for batch in batches:
                    events.write(batch)
                return {"store_write_postgres_per_s": round(n / (time.perf_counter() - started))}
            finally:
                events.close()
    except sa.exc.OperationalError as error:  # no server here: say so in the results
        return {"store_write_postgres_error": str(error).splitlines()[0]}


def stages(
    frames: Frames, settings: ForwarderSettings | None = None, *, per_message: int = 1
) -> dict[str, Any]:
    """Every stage alone over ``frames``; events (or rows) per second. Capture and store
    also over messages of ``per_message`` envelopes (``_batched``)."""
    settings = settings or ForwarderSettings()
    out: dict[str, Any] = dict(publisher_send(frames))
    out["capture_per_s"], batches = capture(frames, settings)
    out["capture_batched_per_s"], whole = capture(frames, settings, per_message)
    with tempfile.TemporaryDirectory(prefix="powerbus-bench-stages-") as work:
        out.update(store(batches, Path(work)))
        out["store_write_batched_per_s"] = store_write(whole, Path(work) / "batched.db")
    out.update(store_postgres(batches))
    return out


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system, every thread) ``pid`` has used so far; 0 without one."""
    if not pid:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_summary(raw: list[dict[str, Any]], fwd: list[dict[str, Any]]) -> dict[str, float]:
    """Median CPU µs per event of each process, and the rate 2 cores could sustain at most
    at that cost (every process of the path shares this machine's cores)."""
    cores = os.cpu_count() or 1

    def med(rounds: list[dict[str, Any]], role: str) -> float:
        return round(float(statistics.median(r["cpu_us_per_event"][role] for r in rounds)), 2)

    out = {
        "raw_publisher": med(raw, "publisher"),
        "raw_subscriber": med(raw, "subscriber"),
        "forwarder_publisher": med(fwd, "publisher"),
        "forwarder_subscriber": med(fwd, "subscriber"),
        "forwarder_bus_until_received": med(fwd, "bus_until_received"),
        "forwarder_bus_until_stored": med(fwd, "bus_until_stored"),
    }
    raw_total = out["raw_publisher"] + out["raw_subscriber"]
    fwd_total = (
        out["forwarder_publisher"] + out["forwarder_subscriber"] + out["forwarder_bus_until_stored"]
    )
    out["raw_total"] = round(raw_total, 2)
    out["forwarder_total"] = round(fwd_total, 2)
    out["raw_cpu_bound_events_per_s"] = round(cores * 1e6 / raw_total) if raw_total else 0
    out["forwarder_cpu_bound_events_per_s"] = round(cores * 1e6 / fwd_total) if fwd_total else 0
    return out
