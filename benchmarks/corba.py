"""A CORBA call through the gateway vs the gRPC call the gateway makes for it.

Both paths end at the same echo node through the same bus:

- ``grpc``:  client --gRPC--> bus --> echo node (what the gateway does for each call);
- ``corba``: client --IIOP--> gateway --gRPC--> bus --> echo node.

The client of each path runs in this process, synchronously, one call at a time (c=1),
with a 64-byte payload; rounds are interleaved (grpc, corba, grpc, ...) and medians kept.
CPU per call is the CPU time (user + system) that every process of the path spent,
divided by the calls: the client (this process), the gateway (corba only), the bus and
the node. The figures that answer "what does the IIOP side add to the gRPC call" are the
ratios corba / grpc of p50 latency and of CPU per call; the target is at most 1.30.

Writes benchmarks/results/corba.json (and corba.md).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc

from benchmarks.harness import environment, write_result
from powerbus.adapters.corba.ior import read_ior_file
from powerbus.adapters.corba.orb import Orb, OrbConfig
from powerbus.adapters.corba.schema import CorbaSchema
from powerbus.bus.kernel.supervisor import ProcessGroup
from powerbus.echo.v1 import echo_pb2

SECONDS = 2.0
WARMUP_SECONDS = 0.5
ROUNDS = 5
TARGET_RATIO = 1.30
PAYLOAD = b"x" * 64
ECHO_ID = "IDL:powerbus/echo/v1/Echo:1.0"
_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from /proc (children excluded)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _loop(call: Callable[[], Any], seconds: float) -> list[float]:
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds
    while True:
        started = time.perf_counter()
        if started >= stop_at:
            return latencies
        call()
        latencies.append(time.perf_counter() - started)


def _measure(call: Callable[[], Any], pids: dict[str, int]) -> dict[str, float]:
    _loop(call, WARMUP_SECONDS)
    before = {name: _cpu_seconds(pid) for name, pid in pids.items()}
    client_before = time.process_time()
    latencies = _loop(call, SECONDS)
    client = time.process_time() - client_before
    spent = {name: _cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    spent["client"] = client
    calls = len(latencies)
    ordered = sorted(latencies)
    result = {
        "calls": float(calls),
        "ops_per_s": calls / SECONDS,
        "p50_us": ordered[calls // 2] * 1e6,
        "p99_us": ordered[min(calls - 1, int(calls * 0.99))] * 1e6,
        "cpu_us_per_call": sum(spent.values()) / calls * 1e6,
    }
    result.update({f"cpu_us_per_call_{name}": value / calls * 1e6 for name, value in spent.items()})
    return result


def _median(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(r[key] for r in rounds), 1) for key in rounds[0]}


def main() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="powerbus-bench-corba-"))
    group = ProcessGroup(directory=directory)
    try:
        bus = group.start_bus(log_level="WARNING")
        node = group.start_node("echo", bus=bus, node_id="bench-echo")
        gateway = group.start_node(
            "corba-gateway", bus=bus, node_id="bench-corba", ior_file=directory / "iors.json"
        )
        results = _run(
            bus=bus.grpc,
            iors=directory / "iors.json",
            pids={"bus": bus.pid, "node": node.pid, "gateway": gateway.pid},
        )
    finally:
        group.close()
    return _write(results)


def _run(*, bus: str, iors: Path, pids: dict[str, int]) -> dict[str, dict[str, float]]:
    stubs = CorbaSchema.installed().load_stubs()
    echo = stubs.attribute("::powerbus::echo::v1")
    duration = stubs.attribute("::google::protobuf::Duration")
    with (
        Orb(config=OrbConfig(call_timeout=timedelta(seconds=10))) as orb,
        grpc.insecure_channel(bus) as channel,
    ):
        ref = orb.resolve(read_ior_file(iors, ECHO_ID))._narrow(
            stubs.objref("::powerbus::echo::v1::Echo")
        )
        corba_request = echo.EchoRequest("bench", PAYLOAD, duration(0, 0), 0)
        unary = channel.unary_unary(
            "/powerbus.echo.v1.Echo/Echo",
            request_serializer=echo_pb2.EchoRequest.SerializeToString,
            response_deserializer=echo_pb2.EchoReply.FromString,
        )
        grpc_request = echo_pb2.EchoRequest(message="bench", payload=PAYLOAD)
        metadata = (("x-powerbus-caller", "bench"),)
        targets: dict[str, tuple[Callable[[], Any], dict[str, int]]] = {
            "grpc": (
                lambda: unary(grpc_request, timeout=10, metadata=metadata),
                {"bus": pids["bus"], "node": pids["node"]},
            ),
            "corba": (lambda: ref.Echo_(corba_request), pids),
        }
        rounds: dict[str, list[dict[str, float]]] = {t: [] for t in targets}
        for _ in range(ROUNDS):
            for target, (call, watched) in targets.items():
                rounds[target].append(_measure(call, watched))
    return {target: _median(r) for target, r in rounds.items()}


def _write(results: dict[str, dict[str, float]]) -> Path:
    corba, direct = results["corba"], results["grpc"]
    ratios = {
        "latency_p50": round(corba["p50_us"] / direct["p50_us"], 3),
        "cpu_per_call": round(corba["cpu_us_per_call"] / direct["cpu_us_per_call"], 3),
    }
    data = {
        "benchmark": "corba",
        "what": "unary Echo (64-byte payload) at c=1: a CORBA call through the gateway vs the "
        "gRPC call the gateway makes, to the same bus and echo node; "
        f"{ROUNDS} interleaved rounds of {SECONDS}s, medians; CPU summed over every process "
        "of the path",
        "environment": environment(),
        "results": results,
        "ratios_corba_over_grpc": ratios,
        "target_ratio": TARGET_RATIO,
        "within_target": all(v <= TARGET_RATIO for v in ratios.values()),
    }
    rows = [
        "| path | ops/s | p50 µs | p99 µs | CPU µs/call | client | gateway | bus | node |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        rows.append(
            f"| {name} | {r['ops_per_s']:,.0f} | {r['p50_us']:,.0f} | {r['p99_us']:,.0f} "
            f"| {r['cpu_us_per_call']:,.0f} | {r['cpu_us_per_call_client']:,.0f} "
            f"| {r.get('cpu_us_per_call_gateway', 0):,.0f} | {r['cpu_us_per_call_bus']:,.0f} "
            f"| {r['cpu_us_per_call_node']:,.0f} |"
        )
    table = "\n".join(rows) + (
        f"\n\n- corba / grpc: p50 latency {ratios['latency_p50']:.2f}, CPU per call "
        f"{ratios['cpu_per_call']:.2f} (target ≤ {TARGET_RATIO:.2f})"
    )
    path = write_result("corba", data, table)
    print(table)
    return path


if __name__ == "__main__":
    print(f"wrote {main()}")
