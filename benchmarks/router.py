"""Unary echo, direct to a node vs through the bus router: same client, same backend.

Writes benchmarks/results/router.json (and router.md): ops/s, p50 and p99 for both at
c=1 and c=8, and their ratios.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import grpc

from benchmarks.harness import (
    Measurement,
    as_dicts,
    closed_loop,
    environment,
    markdown_table,
    median_of,
    summarize,
    write_result,
)
from powerbus.bus.kernel.supervisor import ProcessGroup
from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc

SECONDS = 3.0
ROUNDS = 3
CONCURRENCY = (1, 8)


async def measure(address: str, target: str, concurrency: int) -> Measurement:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = echo_pb2_grpc.EchoStub(channel)
        request = echo_pb2.EchoRequest(message="bench", payload=b"x" * 64)
        await closed_loop(
            lambda: stub.Echo(request, timeout=5), concurrency=concurrency, seconds=0.5
        )
        latencies, errors = await closed_loop(
            lambda: stub.Echo(request, timeout=5), concurrency=concurrency, seconds=SECONDS
        )
    return summarize(target, concurrency, SECONDS, latencies, errors)


def main() -> Path:
    group = ProcessGroup(directory=Path(tempfile.mkdtemp(prefix="powerbus-bench-")))
    try:
        bus = group.start_bus(log_level="WARNING")
        node = group.start_node("echo", bus=bus, node_id="bench-echo")
        targets = {"direct": node.address, "bus": bus.grpc}
        rows: list[Measurement] = []
        for c in CONCURRENCY:
            rounds: dict[str, list[Measurement]] = {t: [] for t in targets}
            for _ in range(ROUNDS):
                for target, address in targets.items():
                    rounds[target].append(asyncio.run(measure(address, target, c)))
            rows += [median_of(rounds[t]) for t in targets]
    finally:
        group.close()
    by = {(r.target, r.concurrency): r for r in rows}
    ratios = {
        f"c{c}": {
            "throughput_bus_over_direct": round(
                by["bus", c].ops_per_s / by["direct", c].ops_per_s, 3
            ),
            "added_p50_us": round(by["bus", c].p50_us - by["direct", c].p50_us, 1),
            "added_p99_us": round(by["bus", c].p99_us - by["direct", c].p99_us, 1),
        }
        for c in CONCURRENCY
    }
    data = {
        "benchmark": "router",
        "what": "unary Echo (64-byte payload), one Python grpc.aio client, one echo node; "
        f"{ROUNDS} interleaved rounds of {SECONDS}s, medians",
        "environment": environment(),
        "results": as_dicts(rows),
        "ratios": ratios,
    }
    table = (
        markdown_table(rows)
        + "\n\n"
        + "\n".join(
            f"- c={c[1:]}: bus/direct throughput {v['throughput_bus_over_direct']:.2f}, "
            f"added p50 {v['added_p50_us']:.0f} µs"
            for c, v in ratios.items()
        )
    )
    path = write_result("router", data, table)
    print(table)
    return path
