"""Events: raw ZeroMQ PUB→SUB as the limit, the bus's forwarder with persistence on, the
loss after replay, replay speed, and NATS JetStream as the peer a user would pick instead.

One run, rounds interleaved (raw, forwarder, raw, ...), medians reported. Every side is
a separate process: the publisher sends pre-built envelopes (built before the clock
starts) as fast as it can with a high-water mark that never drops, so what is measured
is the path, not envelope building. Messages are ``[topic, envelope]`` as a user would
send them, or ``[topic, run frame of 256 envelopes]`` as the SDK publisher packs what its
outbox has queued under load (``PublisherSettings.message_envelopes``, ``run_frame``);
the forwarder rounds run both shapes. The subscriber counts and keeps the frames, and
decodes them only after the clock stops. The bus stores into SQLite; "stored/s" is the
publisher's count over the time from the first send until GetLatestSequences reports
the last envelope stored (persisted). After each forwarder round the subscriber's
missing sequences are replayed from the store (must leave 0 missing). NATS:
``benchmarks.events_nats``.

To find what limits the figures, each round also measures every stage alone
(``benchmarks.events_stages``: the publisher's send loop, the forwarder's capture code,
the store's writes and SQLite's own floor for the same rows) and the CPU each process
spent per event, every thread counted (libzmq's I/O threads too): the path's processes
share this machine's cores, so cores / (CPU µs per event) bounds what it can carry.

Writes benchmarks/results/events.json and events.md.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import grpc
import zmq

from benchmarks.events_nats import nats_round
from benchmarks.events_stages import cpu_s, cpu_summary, messages, stages
from benchmarks.harness import environment, write_result
from powerbus.bus.kernel.supervisor import ProcessGroup
from powerbus.events.v1 import events_pb2
from powerbus.nodes.sdk.events import PublisherSettings, envelope
from powerbus.nodes.sdk.events.replay_client import ReplayClient

N = 200_000
ROUNDS = 3
TARGET_PER_S = 500_000
_IDLE_S = 2.0
BATCHED = PublisherSettings().message_envelopes
"""Envelopes per message in the batched rounds: what the SDK publisher packs at most."""


def build(source: str, count: int) -> list[tuple[bytes, bytes]]:
    """``count`` envelopes of ``source``, numbered from 1, as [topic, envelope] frames."""
    template = envelope(source, 1, events_pb2.BillIssued(bill_id="B-000001", run_id="R1"))
    topic = template.topic.encode()
    frames = []
    for n in range(1, count + 1):
        template.sequence = n
        template.event_id = f"{source}-{n:012d}"
        frames.append((topic, template.SerializeToString()))
    return frames


def _publisher(
    endpoint: str, source: str, count: int, bind: bool, per_message: int, pipe: Connection
) -> None:
    built = messages(build(source, count), per_message)
    context = zmq.Context()
    sock = context.socket(zmq.PUB)
    sock.setsockopt(zmq.SNDHWM, 0)  # never drop: the bench measures the path
    sock.setsockopt(zmq.LINGER, 5000)
    if bind:
        sock.bind(endpoint)
    else:
        sock.connect(endpoint)
    pipe.send("ready")
    pipe.recv()  # go
    started, cpu = time.perf_counter(), time.process_time()
    # Sends with SNDMORE cost a third of send_multipart in pyzmq (see the stages).
    send, more = sock.send, zmq.SNDMORE
    for message in built:
        for frame in message[:-1]:
            send(frame, more)
        send(message[-1])
    sent_s = time.perf_counter() - started
    sock.close()  # lingers until libzmq's I/O thread has written everything: its CPU too
    context.term()
    pipe.send((time.time(), sent_s, time.process_time() - cpu))


def _subscriber(endpoint: str, count: int, per_message: int, pipe: Connection) -> None:
    context = zmq.Context()
    sock = context.socket(zmq.SUB)
    sock.setsockopt(zmq.RCVHWM, 100_000)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(endpoint)
    pipe.send("ready")
    kept: list[bytes] = []
    recv, keep = sock.recv, kept.append
    # Frames rather than envelopes are counted while receiving (the publisher's packing
    # says how many make the round), so the loop measures the path, not our decoding;
    # every frame is decoded after the clock stops, to find what is missing.
    frames = -(-count // per_message)
    cpu = time.process_time()
    if sock.poll(60 * 1000):
        first = last = time.perf_counter()
    while len(kept) < frames:
        try:
            frame = recv(zmq.NOBLOCK, copy=False)  # the topic frame
        except zmq.Again:
            last = time.perf_counter()
            if not sock.poll(int(_IDLE_S * 1000)):
                break
            continue
        while frame.more:  # the envelope frame (a run's carries the rest in following)
            frame = recv(copy=False)
            keep(frame.bytes)
    last = max(last, time.perf_counter()) if len(kept) == frames else last
    cpu = time.process_time() - cpu  # includes the idle wait at the end: negligible CPU
    seen: set[int] = set()
    for raw in kept:
        head = events_pb2.Envelope.FromString(raw)
        seen.add(head.sequence)
        seen.update(e.sequence for e in head.following)
    missing = sorted(set(range(1, count + 1)) - seen)
    pipe.send((len(seen), last - first, missing, cpu))
    sock.close(linger=0)
    context.term()


def _run_pair(
    pub_end: str,
    sub_end: str,
    *,
    pub_binds: bool,
    source: str,
    per_message: int,
    bus_pid: int = 0,
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    sub_pipe, sub_child = ctx.Pipe()
    pub_pipe, pub_child = ctx.Pipe()
    sub = ctx.Process(target=_subscriber, args=(sub_end, N, per_message, sub_child))
    pub = ctx.Process(
        target=_publisher, args=(pub_end, source, N, pub_binds, per_message, pub_child)
    )
    sub.start()
    pub.start()
    try:
        assert sub_pipe.poll(60) and sub_pipe.recv() == "ready"
        assert pub_pipe.poll(120) and pub_pipe.recv() == "ready"
        time.sleep(0.5)  # let the subscription reach the publisher side
        send_started = time.time()
        bus_cpu = cpu_s(bus_pid)
        pub_pipe.send("go")
        assert pub_pipe.poll(120)
        _sent_at, send_s, pub_cpu = pub_pipe.recv()
        assert sub_pipe.poll(120)
        received, span_s, missing, sub_cpu = sub_pipe.recv()
        bus_cpu_at_go, bus_cpu = bus_cpu, cpu_s(bus_pid) - bus_cpu
    finally:
        for p in (pub, sub):
            p.join(30)
            if p.is_alive():
                p.kill()
    return {
        "received": received,
        "events_per_s": round(received / span_s, 0) if span_s else 0.0,
        "publisher_send_per_s": round(N / send_s, 0),
        "missing": missing,
        "send_started": send_started,
        "bus_cpu_at_go": bus_cpu_at_go,
        "cpu_us_per_event": {
            "publisher": round(pub_cpu / N * 1e6, 2),
            "subscriber": round(sub_cpu / N * 1e6, 2),
            "bus_until_received": round(bus_cpu / N * 1e6, 2),
        },
    }


def raw_round(i: int, per_message: int = 1) -> dict[str, Any]:
    port = _free_port()
    result = _run_pair(
        f"tcp://127.0.0.1:{port}",
        f"tcp://127.0.0.1:{port}",
        pub_binds=True,
        source=f"raw-{per_message}-{i}",
        per_message=per_message,
    )
    result["missing"] = len(result["missing"])
    del result["bus_cpu_at_go"], result["cpu_us_per_event"]["bus_until_received"]
    return result


def forwarder_round(
    i: int, bus: dict[str, object], bus_pid: int, per_message: int
) -> dict[str, Any]:
    source = f"bench-{per_message}-{i}"
    result = _run_pair(
        f"tcp://{bus['events_in']}",
        f"tcp://{bus['events_out']}",
        pub_binds=False,
        source=source,
        per_message=per_message,
        bus_pid=bus_pid,
    )
    grpc_address = str(bus["grpc"])
    stored_at = asyncio.run(_wait_stored(grpc_address, source, N))
    # The bus's CPU from the start of the round until all was stored (forwarding, capture,
    # writing, and the polls of GetLatestSequences): what one event costs it in all.
    result["cpu_us_per_event"]["bus_until_stored"] = round(
        (cpu_s(bus_pid) - result.pop("bus_cpu_at_go")) / N * 1e6, 2
    )
    result["stored_per_s"] = round(N / (stored_at - result.pop("send_started")), 0)
    missing: list[int] = result.pop("missing")
    result["missing_live"] = len(missing)
    result["missing_after_replay"] = asyncio.run(_replay_missing(grpc_address, source, missing))
    replay_s = asyncio.run(_replay_all(grpc_address, source))
    result["replay_per_s"] = round(N / replay_s, 0)
    return result


async def _wait_stored(address: str, source: str, count: int) -> float:
    async with grpc.aio.insecure_channel(address) as channel:
        client = ReplayClient(channel, timeout=5)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            mark = (await client.latest([source])).get(source)
            if mark is not None and mark.latest_sequence >= count:
                return time.time()
            await asyncio.sleep(0.02)
    raise TimeoutError(f"{source}: not all {count} stored within 300 s")


async def _replay_missing(address: str, source: str, missing: list[int]) -> int:
    """How many of ``missing`` the store cannot give back."""
    still = set(missing)
    async with grpc.aio.insecure_channel(address) as channel:
        client = ReplayClient(channel, replay_timeout=60)
        for first, last in _ranges(missing):
            async for env in client.replay(source, first, last):
                still.discard(env.sequence)
    return len(still)


async def _replay_all(address: str, source: str) -> float:
    async with grpc.aio.insecure_channel(address) as channel:
        client = ReplayClient(channel, replay_timeout=120)
        started = time.perf_counter()
        n = 0
        async for _env in client.replay(source, 1):
            n += 1
        assert n == N, f"replayed {n} of {N}"
        return time.perf_counter() - started


def _ranges(numbers: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for n in numbers:
        if out and out[-1][1] == n - 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _median(rounds: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in rounds))


def main() -> Path:
    work = Path(tempfile.mkdtemp(prefix="powerbus-bench-events-"))
    group = ProcessGroup(directory=work)
    raw: list[dict[str, Any]] = []
    raw_batched: list[dict[str, Any]] = []
    fwd: list[dict[str, Any]] = []
    fwd_single: list[dict[str, Any]] = []
    nats_rounds: list[dict[str, Any]] = []
    stage_rounds: list[dict[str, Any]] = []
    nats_error = ""
    try:
        handle = group.start_bus(log_level="WARNING", db=f"sqlite:///{work / 'bus.db'}")
        pid = handle.process.pid
        for i in range(ROUNDS):
            # Alternate which goes first, so neither always runs on a warmer machine.
            order = [(raw, False, 1), (raw_batched, False, BATCHED)]
            order += [(fwd, True, BATCHED), (fwd_single, True, 1)]
            for results, through_bus, per_message in order if i % 2 == 0 else order[::-1]:
                if through_bus:
                    results.append(forwarder_round(i, handle.state, pid, per_message))
                else:
                    results.append(raw_round(i, per_message))
            stage_rounds.append(stages(build(f"stage-{i}", N), per_message=BATCHED))
            try:
                nats_rounds.append(asyncio.run(nats_round(i, build(f"nats-{i}", N))))
            except Exception as error:  # no server on this machine: say so in the results
                nats_error = f"{type(error).__name__}: {error}"
    finally:
        group.close()
    summary = {
        "raw_zmq_events_per_s": _median(raw, "events_per_s"),
        "raw_zmq_batched_events_per_s": _median(raw_batched, "events_per_s"),
        "forwarder_events_per_s": _median(fwd, "events_per_s"),
        "forwarder_stored_per_s": _median(fwd, "stored_per_s"),
        "forwarder_single_events_per_s": _median(fwd_single, "events_per_s"),
        "forwarder_single_stored_per_s": _median(fwd_single, "stored_per_s"),
        "forwarder_missing_live": max(r["missing_live"] for r in fwd + fwd_single),
        "forwarder_missing_after_replay": max(r["missing_after_replay"] for r in fwd + fwd_single),
        "replay_per_s": _median(fwd + fwd_single, "replay_per_s"),
        "publisher_send_per_s": _median(fwd, "publisher_send_per_s"),
        "stages_alone": {
            key: _median(stage_rounds, key) if isinstance(value, (int, float)) else value
            for key, value in stage_rounds[0].items()
        },
        "cpu_us_per_event": cpu_summary(raw, fwd),
    }
    if nats_rounds:
        summary["nats_jetstream_publish_stored_per_s"] = _median(
            nats_rounds, "publish_stored_per_s"
        )
        summary["nats_jetstream_consume_per_s"] = _median(nats_rounds, "consume_per_s")
    data: dict[str, object] = {
        "environment": environment(),
        "events_per_round": N,
        "rounds": ROUNDS,
        "envelopes_per_message_batched": BATCHED,
        "targets": {
            "forwarder_events_per_s": TARGET_PER_S,
            "forwarder_stored_per_s": TARGET_PER_S,
            "forwarder_missing_after_replay": 0,
        },
        "summary": summary,
        "raw_rounds": raw,
        "raw_batched_rounds": raw_batched,
        "forwarder_rounds": fwd,
        "forwarder_single_rounds": fwd_single,
        "nats_rounds": nats_rounds,
        "stage_rounds": stage_rounds,
        "nats_error": nats_error,
    }
    return write_result("events", data, _table(summary, nats_error))


def _table(s: dict[str, Any], nats_error: str) -> str:
    def row(what: str, value: float | None, target: str = "") -> str:
        shown = "n/a" if value is None else f"{value:,.0f}"
        return f"| {what} | {shown} | {target} |"

    lines = [
        f"Events, {N:,} envelopes per round, median of {ROUNDS} interleaved rounds. "
        f"'batched': {BATCHED} envelopes per message (one run frame), as the SDK packs a "
        "backlog; 'single': one per message.",
        "",
        "| measure | figure | target |",
        "|---|---:|---|",
        row("raw ZeroMQ PUB→SUB, single, events/s (the limit)", s["raw_zmq_events_per_s"]),
        row("raw ZeroMQ PUB→SUB, batched, events/s", s["raw_zmq_batched_events_per_s"]),
        row(
            "through the forwarder, batched, live at the subscriber, events/s",
            s["forwarder_events_per_s"],
            f"≥ {TARGET_PER_S:,}",
        ),
        row(
            "through the forwarder, batched, first send to last stored, events/s",
            s["forwarder_stored_per_s"],
            f"≥ {TARGET_PER_S:,}",
        ),
        row(
            "through the forwarder, single, live at the subscriber, events/s",
            s["forwarder_single_events_per_s"],
        ),
        row(
            "through the forwarder, single, first send to last stored, events/s",
            s["forwarder_single_stored_per_s"],
        ),
        row("missed live by the subscriber", s["forwarder_missing_live"]),
        row("missing after replay", s["forwarder_missing_after_replay"], "0"),
        row("replay, events/s", s["replay_per_s"]),
        row("publisher send loop, batched, events/s", s["publisher_send_per_s"]),
        row(
            "NATS JetStream (file) publish until stored, msgs/s",
            s.get("nats_jetstream_publish_stored_per_s"),
        ),
        row("NATS JetStream pull consume, msgs/s", s.get("nats_jetstream_consume_per_s")),
        "",
        "Each stage alone (events or rows/s, same run):",
        "",
        "| stage | figure |",
        "|---|---:|",
        *(
            f"| {k} | {v:,.0f} |" if isinstance(v, (int, float)) else f"| {k} | {v} |"
            for k, v in s["stages_alone"].items()
        ),
        "",
        "CPU µs per event, every thread of each process (the machine has "
        f"{os.cpu_count()} cores; cpu_bound = cores / total):",
        "",
        "| process | µs/event |",
        "|---|---:|",
        *(f"| {k} | {v:,.2f} |" for k, v in s["cpu_us_per_event"].items()),
    ]
    if nats_error:
        lines += ["", f"NATS: {nats_error}"]
    return "\n".join(lines)


if __name__ == "__main__":
    print(f"wrote {main()}")
