"""The processes the event proofs start: a publisher that commits changes with their
events, and a subscriber that records what it receives with its position, each in one
transaction of its own SQLite database.

    python tests/events/actors.py publish --bus G [--events-in A[,B]] --db URL --source S
        --count N [--kill-after K] [--rate R]
    python tests/events/actors.py subscribe --bus G [--events-out A] --db URL --name S
        [--prefix P] [--pause SECONDS] [--handle-s SECONDS]

Without ``--events-in``/``--events-out`` the bus is asked where its event sockets are.
The subscriber reports its positions to the bus under ``--name``.

The publisher exits 0 once the bus has stored all ``--count`` changes of its database (it
continues where a killed run stopped); with ``--kill-after K`` it SIGKILLs itself right
after committing change K, before anything is sent. It prints the seconds publishing took.
The subscriber runs until SIGTERM; ``--handle-s`` is how long handling each event takes
(a slow consumer: its positions advance, and are reported, only as fast as it handles).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time

import sqlalchemy as sa

from powerbus.bus.kernel.database import create_engine, read_transaction, write_transaction
from powerbus.events.v1 import events_pb2
from powerbus.nodes.sdk.events import (
    Outbox,
    Publisher,
    PublisherSettings,
    SqlPositions,
    Subscriber,
    SubscriberSettings,
    open_event_tables,
)

meta = sa.MetaData()
changes = sa.Table(
    "changes", meta, sa.Column("n", sa.Integer, primary_key=True, autoincrement=False)
)
received = sa.Table(
    "received",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String, nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("event_id", sa.String, nullable=False),
    sa.Column("topic", sa.String, nullable=False),
)


async def publish(args: argparse.Namespace) -> None:
    engine = create_engine(args.db)
    open_event_tables(engine)
    meta.create_all(engine)
    box = Outbox(engine, source=args.source)
    settings = PublisherSettings(resend_after=0.5, ack_interval=0.05)
    async with Publisher(
        source=args.source,
        outbox=box,
        bus=args.bus,
        events_in=args.events_in.split(",") if args.events_in else (),
        settings=settings,
    ) as pub:
        with read_transaction(engine) as conn:
            done = conn.execute(sa.select(sa.func.count()).select_from(changes)).scalar_one()
        started = time.perf_counter()
        step = max(1, args.batch)
        for first in range(done + 1, args.count + 1, step):
            numbers = list(range(first, min(first + step, args.count + 1)))
            with write_transaction(engine) as conn:
                conn.execute(sa.insert(changes), [{"n": n} for n in numbers])
                box.add_many(conn, [events_pb2.BillIssued(bill_id=f"B{n}") for n in numbers])
            if args.kill_after and numbers[-1] >= args.kill_after:
                os.kill(os.getpid(), signal.SIGKILL)  # committed, nothing sent yet
            pub.notify()
            if args.rate:
                await asyncio.sleep(len(numbers) / args.rate)
            else:
                await asyncio.sleep(0)
        await pub.flush(timeout=60)
        print(f"{time.perf_counter() - started:.4f}", flush=True)
    engine.dispose()


async def subscribe(args: argparse.Namespace) -> None:
    engine = create_engine(args.db)
    open_event_tables(engine)
    meta.create_all(engine)
    positions = SqlPositions(engine, subscriber=args.name)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    settings = SubscriberSettings(rcvhwm=args.rcvhwm, sync_interval=0.5)
    async with Subscriber(
        events_out=args.events_out.split(",") if args.events_out else (),
        bus=args.bus,
        prefixes=[args.prefix],
        positions=positions.load(),
        name=args.name,
        settings=settings,
    ) as sub:
        while not stopping.is_set():
            batch = await sub.receive(timeout=0.2, limit=args.limit)
            if args.pause or args.handle_s:
                await asyncio.sleep(args.pause + args.handle_s * len(batch))
            rows = [
                {
                    "source": e.source,
                    "sequence": e.sequence,
                    "event_id": e.event_id,
                    "topic": e.topic,
                }
                for e in batch
            ]
            with write_transaction(engine) as conn:
                if rows:
                    conn.execute(sa.insert(received), rows)
                positions.save(conn, sub.positions)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("publish")
    p.add_argument("--bus", required=True)
    p.add_argument("--events-in", default="", help="default: asked from the bus")
    p.add_argument("--db", required=True)
    p.add_argument("--source", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--kill-after", type=int, default=0)
    p.add_argument("--rate", type=float, default=0.0)
    s = sub.add_parser("subscribe")
    s.add_argument("--bus", required=True)
    s.add_argument("--events-out", default="", help="default: asked from the bus")
    s.add_argument("--db", required=True)
    s.add_argument("--name", required=True)
    s.add_argument("--prefix", default="")
    s.add_argument("--pause", type=float, default=0.0)
    s.add_argument("--handle-s", type=float, default=0.0)
    s.add_argument("--limit", type=int, default=10_000)
    s.add_argument("--rcvhwm", type=int, default=100_000)
    args = parser.parse_args()
    asyncio.run(publish(args) if args.command == "publish" else subscribe(args))


if __name__ == "__main__":
    sys.exit(main())
