"""Shared benchmark machinery: a closed-loop load generator and result files.

Machines here are shared and noisy, so every comparison is measured side by side in one
run, interleaved (A, B, A, B, ...), and reported as the median of the rounds.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc

from powerbus.nodes.testing.databases import schema_of_its_own

RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Measurement:
    target: str
    concurrency: int
    ops_per_s: float
    p50_us: float
    p99_us: float
    errors: int
    calls: int


async def closed_loop(
    call: Callable[[], Awaitable[object]], *, concurrency: int, seconds: float
) -> tuple[list[float], int]:
    """``concurrency`` workers each calling back-to-back for ``seconds``; latencies in s."""
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        while True:
            start = time.perf_counter()
            if start >= stop_at:
                return
            try:
                await call()
            except grpc.aio.AioRpcError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - start)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors


def summarize(
    target: str, concurrency: int, seconds: float, latencies: list[float], errors: int
) -> Measurement:
    ordered = sorted(latencies) or [0.0]
    return Measurement(
        target=target,
        concurrency=concurrency,
        ops_per_s=round(len(latencies) / seconds, 1),
        p50_us=round(ordered[len(ordered) // 2] * 1e6, 1),
        p99_us=round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6, 1),
        errors=errors,
        calls=len(latencies),
    )


def median_of(rounds: list[Measurement]) -> Measurement:
    """The median of each figure over rounds of one target and concurrency."""
    first = rounds[0]
    return Measurement(
        target=first.target,
        concurrency=first.concurrency,
        ops_per_s=round(statistics.median(r.ops_per_s for r in rounds), 1),
        p50_us=round(statistics.median(r.p50_us for r in rounds), 1),
        p99_us=round(statistics.median(r.p99_us for r in rounds), 1),
        errors=sum(r.errors for r in rounds),
        calls=sum(r.calls for r in rounds),
    )


def environment() -> dict[str, object]:
    import os

    return {
        "python": sys.version.split()[0],
        "grpcio": grpc.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_result(name: str, data: dict[str, object], table: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (RESULTS / f"{name}.md").write_text(table + "\n", encoding="utf-8")
    return path


def markdown_table(rows: list[Measurement]) -> str:
    lines = [
        "| target | c | ops/s | p50 µs | p99 µs | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.target} | {r.concurrency} | {r.ops_per_s:,.0f} | {r.p50_us:,.0f} "
            f"| {r.p99_us:,.0f} | {r.errors} |"
        )
    return "\n".join(lines)


def as_dicts(rows: list[Measurement]) -> list[dict[str, object]]:
    return [asdict(r) for r in rows]


@contextmanager
def postgres_schema(prefix: str = "powerbus_bench") -> Iterator[str]:
    """A URL whose search path is a new schema on POWERBUS_BENCH_PG_URL, else
    POWERBUS_TEST_PG_URL, else the local server; the schema is dropped afterwards (the
    database is shared, so nothing of a run lands in ``public``)."""
    base = os.environ.get("POWERBUS_BENCH_PG_URL") or os.environ.get(
        "POWERBUS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    with schema_of_its_own(base, prefix) as url:
        yield url
