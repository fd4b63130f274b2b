"""Ledger postings per second: in process with batching (target ≥ 20,000/s) and through
the bus (target ≥ 5,000/s).

* in process: ``PaymentStore.post`` on a SQLite file and on PostgreSQL side by side
  (a schema of its own on POWERBUS_BENCH_PG_URL, else POWERBUS_TEST_PG_URL, else the local
  server), batches of 1, 256 and 1,024 new payments (each a payment row, a journal
  transaction and two entries), the ledger audited afterwards; the batch of 256 once more
  with the events outbox on (``payment.payment.posted`` staged in the same transaction);
* through the bus: a ``powerbus bus`` and a ``powerbus node payment`` process, a
  ``grpc.aio`` client calling ``Payments.PostPayment`` through the router at c=8 and
  c=64, then ``Payments.PostPayments`` (100 a call at c=4, 250 at c=8), distinct
  serials, the node's group commit batching concurrent posts, on each database. No
  billing node runs, so each payment is recorded application_pending, which is the path
  a post takes anyway before billing answers.

``python -m benchmarks.payment``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc

from benchmarks.harness import closed_loop, environment, postgres_schema, summarize, write_result
from powerbus.bus.kernel.database import create_engine
from powerbus.bus.kernel.supervisor import ProcessGroup
from powerbus.common.v1 import common_pb2
from powerbus.nodes.payment.outbox import OutboxSink
from powerbus.nodes.payment.store.migrations import MIGRATIONS
from powerbus.nodes.payment.store.payments import PaymentStore
from powerbus.nodes.payment.store.records import PostRequest
from powerbus.nodes.sdk.events import Outbox, open_event_tables
from powerbus.payment.v1 import payment_pb2, payment_pb2_grpc

IN_PROCESS_TARGET = 20_000
BUS_TARGET = 5_000
SECONDS = 3.0
_RUNS = itertools.count()  # a fresh database per run: no run sees another's serials


def _request(n: int) -> PostRequest:
    return PostRequest(
        bank_code="0102",
        bank_txn_id=f"B{n:019d}",
        account_id=f"31{n % 100_000:08d}",
        amount=1_000 + n % 50_000,
        channel="PAYMENT_CHANNEL_BANK_COUNTER",
        paid_at=dt.datetime(2026, 12, 4, 9) + dt.timedelta(milliseconds=n),
        settlement_date=dt.date(2026, 12, 4),
    )


def in_process(
    db: str, url: str, batch: int, total: int, *, events: bool = False
) -> dict[str, object]:
    engine = create_engine(url)
    try:
        MIGRATIONS.run(engine)
        sink = None
        if events:
            open_event_tables(engine)
            sink = OutboxSink(Outbox(engine, source=f"bench-{next(_RUNS)}"))
        store = PaymentStore(engine, clock=lambda: dt.datetime.now(dt.timezone.utc), events=sink)
        base = next(_RUNS) * 10_000_000  # distinct serials when a database is shared
        requests = [_request(base + n) for n in range(total)]
        t0 = time.perf_counter()
        for start in range(0, total, batch):
            store.post(requests[start : start + batch])
        elapsed = time.perf_counter() - t0
        audit = store.audit()
        assert audit.problems == (), audit.problems[:3]
    finally:
        engine.dispose()
    return {
        "target": "in process",
        "db": db,
        "events": events,
        "batch": batch,
        "postings": total,
        "seconds": round(elapsed, 2),
        "postings_per_s": round(total / elapsed),
    }


def _wire_request(n: int, prefix: str) -> payment_pb2.PostPaymentRequest:
    return payment_pb2.PostPaymentRequest(
        bank_code="0102",
        bank_txn_id=f"{prefix}{n:019d}",
        account=common_pb2.AccountRef(account_id=f"31{n % 100_000:08d}"),
        amount=common_pb2.Money(fen=1_000 + n % 50_000, currency="CNY"),
        channel=payment_pb2.PAYMENT_CHANNEL_BANK_COUNTER,
    )


async def through_bus(
    db: str, bus: str, concurrency: int, counter: itertools.count[int], *, batch: int = 1
) -> dict[str, object]:
    """Closed-loop callers through the bus: ``PostPayment`` each (batch 1), or
    ``PostPayments`` of ``batch`` payments a call; postings/s counts payments recorded."""
    async with grpc.aio.insecure_channel(bus) as channel:
        stub = payment_pb2_grpc.PaymentsStub(channel)

        async def one() -> None:
            await stub.PostPayment(_wire_request(next(counter), "G"), timeout=10)

        async def many() -> None:
            request = payment_pb2.PostPaymentsRequest(
                payments=[_wire_request(next(counter), "G") for _ in range(batch)]
            )
            reply = await stub.PostPayments(request, timeout=30)
            refused = [r for r in reply.results if r.WhichOneof("result") != "posted"]
            assert not refused, refused[0]

        call = one if batch == 1 else many
        await closed_loop(call, concurrency=concurrency, seconds=0.5)  # warm-up
        latencies, errors = await closed_loop(call, concurrency=concurrency, seconds=SECONDS)
    m = summarize("through the bus", concurrency, SECONDS, latencies, errors)
    return {
        "target": m.target,
        "db": db,
        "concurrency": m.concurrency,
        "batch": batch,
        "postings_per_s": round(m.ops_per_s * batch),
        "p50_us": m.p50_us,
        "p99_us": m.p99_us,
        "errors": m.errors,
    }


BUS_RUNS = ((8, 1), (64, 1), (4, 100), (8, 250))
"""(concurrency, payments per call) through the bus: PostPayment, then PostPayments."""


async def bus_rows(directory: Path, db: str, url: str) -> list[dict[str, object]]:
    group = ProcessGroup(directory=directory / db)
    try:
        bus = group.start_bus(log_level="WARNING")
        group.start_node("payment", bus=bus, db=url)
        await asyncio.sleep(1.0)  # the router learns of the node within a registry poll
        counter = itertools.count()
        return [await through_bus(db, bus.grpc, c, counter, batch=b) for c, b in BUS_RUNS]
    finally:
        group.close()


def _sqlite(directory: Path) -> str:
    return f"sqlite:///{directory / f'ledger-{next(_RUNS)}.db'}"


def main() -> str:
    directory = Path(tempfile.mkdtemp(prefix="powerbus-bench-payment-"))
    (directory / "sqlite").mkdir()
    (directory / "postgresql").mkdir()
    local: list[dict[str, object]] = []
    remote: list[dict[str, object]] = []
    for db in ("sqlite", "postgresql"):
        for batch, total in ((1, 2_000), (256, 50_000), (1_024, 50_000)):
            with _url(db, directory) as url:
                local.append(in_process(db, url, batch, total))
        with _url(db, directory) as url:
            local.append(in_process(db, url, 256, 50_000, events=True))
        with _url(db, directory) as url:
            remote += asyncio.run(bus_rows(directory, db, url))
    best_local = max(int(str(r["postings_per_s"])) for r in local if r["batch"] != 1)
    best_bus = max(int(str(r["postings_per_s"])) for r in remote)
    lines = [
        f"Ledger postings per second (targets: ≥ {IN_PROCESS_TARGET:,}/s in process with "
        f"batching, ≥ {BUS_TARGET:,}/s through the bus)",
        "",
        "| database | target | batch / c | postings/s | p50 µs | p99 µs |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in local:
        outbox = " + outbox" if r["events"] else ""
        lines.append(
            f"| {r['db']} | in process | batch {r['batch']}{outbox} | {r['postings_per_s']:,} | | |"
        )
    for r in remote:
        how = "PostPayment" if r["batch"] == 1 else f"PostPayments ×{r['batch']}"
        lines.append(
            f"| {r['db']} | through the bus, {how} | c={r['concurrency']} "
            f"| {r['postings_per_s']:,} | {r['p50_us']:,.0f} | {r['p99_us']:,.0f} |"
        )
    lines += [
        "",
        f"- in process: best {best_local:,}/s "
        f"({'meets' if best_local >= IN_PROCESS_TARGET else 'misses'} the target)",
        f"- through the bus: best {best_bus:,}/s "
        f"({'meets' if best_bus >= BUS_TARGET else 'misses'} the target)",
    ]
    data: dict[str, object] = {
        "environment": environment(),
        "in_process": local,
        "through_bus": remote,
        "targets": {"in_process": IN_PROCESS_TARGET, "through_bus": BUS_TARGET},
        "meets": {
            "in_process": best_local >= IN_PROCESS_TARGET,
            "through_bus": best_bus >= BUS_TARGET,
        },
    }
    return str(write_result("payment", data, "\n".join(lines)))


@contextmanager
def _url(db: str, directory: Path) -> Iterator[str]:
    """A fresh database of kind ``db``: a SQLite file, or a PostgreSQL schema dropped after."""
    if db == "sqlite":
        yield _sqlite(directory)
        return
    with postgres_schema("powerbus_bench_payment") as url:
        yield url


if __name__ == "__main__":
    print(f"wrote {main()}")
