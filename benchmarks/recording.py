"""What traffic recording costs the router: the same bus with the recorder and without.

Two bus processes share one registry database (so both route to the same echo node);
one counts every call (the default), the other runs with ``POWERBUS_RECORD_TRAFFIC=0``
(its router reports to a ``NullObserver``). The same client calls both, interleaved.
Writes benchmarks/results/recording.json (and recording.md): ops/s, p50 and p99 of each
at c=1 and c=8, and the throughput lost to recording.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import grpc

from benchmarks.harness import (
    Measurement,
    as_dicts,
    environment,
    markdown_table,
    median_of,
    write_result,
)
from benchmarks.router import measure
from powerbus.bus.kernel.supervisor import ProcessGroup
from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.load_balancer import StatusCode
from powerbus.monitoring import CallRecord, NullObserver, TrafficRecorder

ROUNDS = 5
MICRO_CALLS = 200_000
CONCURRENCY = (1, 8)
TARGETS = ("recording", "no-recording")


def main() -> Path:
    work = Path(tempfile.mkdtemp(prefix="powerbus-bench-recording-"))
    group = ProcessGroup(directory=work)
    db = f"sqlite:///{work / 'shared.db'}"
    try:
        recording = group.start_bus(log_level="WARNING", db=db)
        silent = group.start_bus(log_level="WARNING", db=db, env={"POWERBUS_RECORD_TRAFFIC": "0"})
        group.start_node("echo", bus=recording, node_id="bench-echo")
        asyncio.run(_wait_routable(silent.grpc))
        addresses = {"recording": recording.grpc, "no-recording": silent.grpc}
        rows: list[Measurement] = []
        for c in CONCURRENCY:
            rounds: dict[str, list[Measurement]] = {t: [] for t in TARGETS}
            for i in range(ROUNDS):
                # Alternate which goes first, so neither always runs on a warmer machine.
                for target in TARGETS if i % 2 == 0 else reversed(TARGETS):
                    rounds[target].append(asyncio.run(measure(addresses[target], target, c)))
            rows += [median_of(rounds[t]) for t in TARGETS]
    finally:
        group.close()
    by = {(r.target, r.concurrency): r for r in rows}
    overhead = {
        f"c{c}": {
            "throughput_recording_over_none": round(
                by["recording", c].ops_per_s / by["no-recording", c].ops_per_s, 4
            ),
            "throughput_cost_pct": round(
                100 * (1 - by["recording", c].ops_per_s / by["no-recording", c].ops_per_s), 2
            ),
            "added_p50_us": round(by["recording", c].p50_us - by["no-recording", c].p50_us, 1),
        }
        for c in CONCURRENCY
    }
    micro = recorder_cost()
    data = {
        "benchmark": "recording",
        "what": "unary Echo through the bus, recorder on vs NullObserver (two bus processes "
        f"sharing one registry and one echo node); {ROUNDS} interleaved rounds, medians",
        "environment": environment(),
        "results": as_dicts(rows),
        "overhead": overhead,
        "recorder_per_call": micro,
    }
    table = (
        markdown_table(rows)
        + "\n\n"
        + "\n".join(
            f"- c={c[1:]}: recording costs {v['throughput_cost_pct']:.1f}% of throughput "
            f"(recording/none {v['throughput_recording_over_none']:.3f}), "
            f"p50 {v['added_p50_us']:+.0f} µs"
            for c, v in overhead.items()
        )
        + f"\n- in process: call_started + call_finished cost {micro['recorder_ns']:,.0f} ns per "
        f"call with the recorder, {micro['null_ns']:,.0f} ns with NullObserver "
        f"({micro['calls']:,} calls, 8 callers, 2 nodes, 2 codes)"
    )
    path = write_result("recording", data, table)
    print(table)
    return path


def recorder_cost() -> dict[str, float]:
    """Nanoseconds per call the router spends telling the observer, recorder vs none."""
    keys = [
        (f"caller-{i % 8}", f"echo-{i % 2}", StatusCode.OK if i % 50 else StatusCode.UNAVAILABLE)
        for i in range(64)
    ]
    records = [
        CallRecord("powerbus.echo.v1.Echo", "Echo", node, caller, code, 0.0012, 80, 120)
        for caller, node, code in keys
    ]
    result: dict[str, float] = {"calls": MICRO_CALLS}
    for name, observer in (("recorder", TrafficRecorder()), ("null", NullObserver())):
        started, finished = observer.call_started, observer.call_finished
        begin = time.perf_counter()
        for i in range(MICRO_CALLS):
            record = records[i & 63]
            started(record.service, record.method, record.node_id)
            finished(record)
        result[f"{name}_ns"] = round((time.perf_counter() - begin) / MICRO_CALLS * 1e9, 1)
    return result


async def _wait_routable(address: str) -> None:
    """The second bus learns of the node from the shared database within a poll or two."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = echo_pb2_grpc.EchoStub(channel)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while True:
            try:
                await stub.Echo(echo_pb2.EchoRequest(message="ready?"), timeout=2)
                return
            except grpc.aio.AioRpcError:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.1)
