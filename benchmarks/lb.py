"""Load balancing: unary Echo over two echo nodes, four ways, one client, one run.

- ``direct``: the client round-robins over its own channels to the two nodes;
- ``router``: through the bus's router (its default policy: round robin, retries...);
- ``nginx``: through Debian's nginx, ``grpc_pass`` round robin over the same two nodes;
- ``proxyless``: the SDK's :class:`ProxylessClient`, balancing itself, calling directly.

Same Python ``grpc.aio`` client, same nodes, c=1 and c=8, interleaved rounds, medians.
Writes benchmarks/results/lb.json and lb.md.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
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
from benchmarks.nginx import Nginx
from powerbus.bus.kernel.supervisor import ProcessGroup
from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc
from powerbus.nodes.sdk.proxyless import ProxylessClient

SECONDS = 3.0
ROUNDS = 3
CONCURRENCY = (1, 8)
TARGETS = ("direct", "router", "nginx", "proxyless")
REQUEST = echo_pb2.EchoRequest(message="bench", payload=b"x" * 64)
ECHO = "powerbus.echo.v1.Echo"

Call = Callable[[], Awaitable[object]]


@asynccontextmanager
async def caller(target: str, addresses: dict[str, object]) -> AsyncIterator[Call]:
    """A zero-argument coroutine making one Echo call the ``target`` way."""
    if target == "direct":
        channels = [grpc.aio.insecure_channel(a) for a in addresses["nodes"]]  # type: ignore[attr-defined]
        stubs = itertools.cycle([echo_pb2_grpc.EchoStub(c) for c in channels])
        try:
            yield lambda: next(stubs).Echo(REQUEST, timeout=5)
        finally:
            for channel in channels:
                await channel.close()
    elif target == "proxyless":
        async with ProxylessClient(
            bus=str(addresses["bus"]), caller="bench", report_interval=5.0
        ) as client:
            await client.wait_for_nodes(ECHO, count=2, timeout=30)
            stub = client.stub(echo_pb2_grpc.EchoStub)
            yield lambda: stub.Echo(REQUEST, timeout=5)
    else:
        async with grpc.aio.insecure_channel(str(addresses[target])) as channel:
            stub = echo_pb2_grpc.EchoStub(channel)
            yield lambda: stub.Echo(REQUEST, timeout=5)


async def measure(target: str, addresses: dict[str, object], concurrency: int) -> Measurement:
    async with caller(target, addresses) as call:
        await closed_loop(call, concurrency=concurrency, seconds=0.5)
        latencies, errors = await closed_loop(call, concurrency=concurrency, seconds=SECONDS)
    return summarize(target, concurrency, SECONDS, latencies, errors)


def ratios(rows: list[Measurement]) -> dict[str, dict[str, float]]:
    by = {(r.target, r.concurrency): r for r in rows}
    out: dict[str, dict[str, float]] = {}
    for c in CONCURRENCY:
        direct = by["direct", c]
        entry: dict[str, float] = {}
        for target in TARGETS[1:]:
            row = by[target, c]
            entry[f"{target}_over_direct"] = round(row.ops_per_s / direct.ops_per_s, 3)
            entry[f"{target}_added_p50_us"] = round(row.p50_us - direct.p50_us, 1)
        entry["router_over_nginx"] = round(by["router", c].ops_per_s / by["nginx", c].ops_per_s, 3)
        out[f"c{c}"] = entry
    return out


def targets_met(r: dict[str, dict[str, float]]) -> dict[str, bool]:
    return {
        "router_c8_at_least_0.6_of_direct": r["c8"]["router_over_direct"] >= 0.6,
        "router_c8_at_least_nginx": r["c8"]["router_over_nginx"] >= 1.0,
        "router_c1_added_p50_at_most_300us": r["c1"]["router_added_p50_us"] <= 300,
        "proxyless_c8_at_least_0.95_of_direct": r["c8"]["proxyless_over_direct"] >= 0.95,
        "proxyless_c1_at_least_0.95_of_direct": r["c1"]["proxyless_over_direct"] >= 0.95,
    }


def main() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="powerbus-lb-bench-"))
    group = ProcessGroup(directory=directory)
    try:
        bus = group.start_bus(log_level="WARNING")
        nodes = [group.start_node("echo", bus=bus, node_id=f"bench-echo-{i}") for i in (1, 2)]
        node_addresses = [n.address for n in nodes]
        nginx_dir = directory / "nginx"
        nginx_dir.mkdir()
        with Nginx(directory=nginx_dir, backends=node_addresses) as nginx:
            addresses: dict[str, object] = {
                "nodes": node_addresses,
                "router": bus.grpc,
                "bus": bus.grpc,
                "nginx": nginx.address,
            }
            rows: list[Measurement] = []
            for c in CONCURRENCY:
                rounds: dict[str, list[Measurement]] = {t: [] for t in TARGETS}
                for _ in range(ROUNDS):
                    for target in TARGETS:
                        rounds[target].append(asyncio.run(measure(target, addresses, c)))
                rows += [median_of(rounds[t]) for t in TARGETS]
    finally:
        group.close()
    found = ratios(rows)
    met = targets_met(found)
    data = {
        "benchmark": "lb",
        "what": "unary Echo (64-byte payload) over two echo nodes; one Python grpc.aio client; "
        "direct (client round robin over two channels), bus router, nginx grpc_pass round "
        f"robin (1 worker), proxyless SDK; {ROUNDS} interleaved rounds of {SECONDS}s, medians",
        "environment": environment(),
        "results": as_dicts(rows),
        "ratios": found,
        "targets": met,
    }
    lines = [markdown_table(rows), ""]
    for c in CONCURRENCY:
        v = found[f"c{c}"]
        lines.append(
            f"- c={c}: router/direct {v['router_over_direct']:.2f} "
            f"(added p50 {v['router_added_p50_us']:.0f} µs), "
            f"nginx/direct {v['nginx_over_direct']:.2f} "
            f"(added p50 {v['nginx_added_p50_us']:.0f} µs), "
            f"router/nginx {v['router_over_nginx']:.2f}, "
            f"proxyless/direct {v['proxyless_over_direct']:.2f}"
        )
    lines.append(
        "- targets: " + ", ".join(f"{k} {'met' if ok else 'NOT met'}" for k, ok in met.items())
    )
    table = "\n".join(lines)
    path = write_result("lb", data, table)
    print(table)
    return path


if __name__ == "__main__":
    print(f"wrote {main()}")
