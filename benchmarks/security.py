"""Unary echo with mTLS and access control on beside both off: direct to a node and
through the bus router.

Two independent setups in one run (a plaintext bus and node; an mTLS bus with
``--access-control`` and rules, and an mTLS node, with certificates from ``powerbus
certs``), measured in interleaved rounds. Writes benchmarks/results/security.json (and
.md): ops/s, p50, p99 per target at c=1 and c=8, and the throughput of the secured setup
over plaintext (target: at least 0.85 at c=8).
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
from powerbus.bus.access import Actor, Effect, Right
from powerbus.bus.access.store import AccessStore
from powerbus.bus.kernel.certificates import IdentityKind, init_ca, issue
from powerbus.bus.kernel.supervisor import ProcessGroup
from powerbus.bus.kernel.tls import TlsFiles
from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc

SECONDS = 2.0
ROUNDS = 5
CONCURRENCY = (1, 8)
ECHO = "powerbus.echo.v1.Echo"


async def measure(address: str, target: str, concurrency: int, tls: TlsFiles | None) -> Measurement:
    channel = (
        grpc.aio.insecure_channel(address)
        if tls is None
        else grpc.aio.secure_channel(address, tls.channel_credentials())
    )
    async with channel:
        stub = echo_pb2_grpc.EchoStub(channel)
        request = echo_pb2.EchoRequest(message="bench", payload=b"x" * 64)
        await closed_loop(
            lambda: stub.Echo(request, timeout=5), concurrency=concurrency, seconds=0.5
        )
        latencies, errors = await closed_loop(
            lambda: stub.Echo(request, timeout=5), concurrency=concurrency, seconds=SECONDS
        )
    return summarize(target, concurrency, SECONDS, latencies, errors)


def _pki(directory: Path) -> dict[str, TlsFiles]:
    init_ca(directory)
    files = {}
    for kind, name in (
        (IdentityKind.BUS, "main"),
        (IdentityKind.NODE, "bench-echo-tls"),
        (IdentityKind.NODE, "bench-client"),
    ):
        issued = issue(directory, kind, name)
        files[name] = TlsFiles(cert=issued.cert, key=issued.key, ca=directory / "ca.pem")
    return files


def _flags(files: TlsFiles) -> dict[str, str]:
    return {"tls_cert": str(files.cert), "tls_key": str(files.key), "tls_ca": str(files.ca)}


def _rules(db_url: str) -> None:
    """What the secured bus allows: the node serves Echo, reports its traffic and reads
    the rules, the client calls Echo; everything else is denied (default deny)."""
    store = AccessStore.open(db_url)
    admin = Actor.local()
    try:
        store.rules.add("node/bench-echo-*", Right.SERVE, ECHO, Effect.ALLOW, admin)
        store.rules.add("node/bench-echo-*", Right.REPORT, "traffic", Effect.ALLOW, admin)
        # The node reads the rules to decide the client's direct (proxyless) calls itself.
        store.rules.add("node/bench-echo-*", Right.READ, "registry", Effect.ALLOW, admin)
        store.rules.add("node/bench-client", Right.CALL, f"{ECHO}/*", Effect.ALLOW, admin)
    finally:
        store.close()


def main() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="powerbus-bench-"))
    pki = _pki(directory / "certs")
    client = pki["bench-client"]
    group = ProcessGroup(directory=directory)
    secured_db = f"sqlite:///{directory / 'secured.db'}"
    _rules(secured_db)
    try:
        plain_bus = group.start_bus(log_level="WARNING")
        plain_node = group.start_node("echo", bus=plain_bus, node_id="bench-echo")
        tls_bus = group.start_bus(
            log_level="WARNING", db=secured_db, access_control=True, **_flags(pki["main"])
        )
        tls_node = group.start_node(
            "echo", bus=tls_bus, node_id="bench-echo-tls", **_flags(pki["bench-echo-tls"])
        )
        targets: dict[str, tuple[str, TlsFiles | None]] = {
            "direct": (plain_node.address, None),
            "bus": (plain_bus.grpc, None),
            "direct-mtls": (tls_node.address, client),
            "bus-mtls": (tls_bus.grpc, client),
        }
        rows: list[Measurement] = []
        for c in CONCURRENCY:
            rounds: dict[str, list[Measurement]] = {t: [] for t in targets}
            for _ in range(ROUNDS):
                for target, (address, tls) in targets.items():
                    rounds[target].append(asyncio.run(measure(address, target, c, tls)))
            rows += [median_of(rounds[t]) for t in targets]
    finally:
        group.close()
    by = {(r.target, r.concurrency): r for r in rows}
    ratios = {
        f"c{c}": {
            f"{path}_mtls_over_plain": round(
                by[f"{path}-mtls", c].ops_per_s / by[path, c].ops_per_s, 3
            )
            for path in ("direct", "bus")
        }
        for c in CONCURRENCY
    }
    data = {
        "benchmark": "security",
        "what": "unary Echo (64-byte payload), one Python grpc.aio client, one echo node per "
        "setup; plaintext vs mTLS (bus, node, node link and client certificates); "
        "and, on the mTLS bus, --access-control with three rules (every routed call is "
        f"decided); {ROUNDS} interleaved rounds of {SECONDS}s, medians.",
        "target": "mTLS (+ access control on the bus) throughput at least 0.85 of plaintext at c=8",
        "environment": environment(),
        "results": as_dicts(rows),
        "ratios": ratios,
    }
    table = (
        markdown_table(rows)
        + "\n\n"
        + "\n".join(
            f"- c={c[1:]}: mTLS/plain throughput direct {v['direct_mtls_over_plain']:.2f}, "
            f"bus {v['bus_mtls_over_plain']:.2f}"
            for c, v in ratios.items()
        )
    )
    path = write_result("security", data, table)
    print(table)
    return path


if __name__ == "__main__":
    print(f"wrote {main()}")
