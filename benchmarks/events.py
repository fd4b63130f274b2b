"""Events: raw ZeroMQ PUB→SUB as the limit, the bus's forwarder with persistence on, the
loss after replay, replay speed, and NATS JetStream as the peer a user would pick instead.

One run, rounds interleaved (raw, forwarder, raw, ...), medians reported. Every side is
a separate process: the publisher sends pre-built envelopes (built before the clock
starts) as fast as it can with a high-water mark that never drops, so what is measured
is the path, not envelope building. The subscriber counts and keeps the frames, and
decodes them only after the clock stops. The bus stores into SQLite; "stored/s" is the
publisher's count over the time from the first send until GetLatestSequences reports it
all stored. After each forwarder round the subscriber's missing sequences are replayed
from the store (must leave 0 missing). NATS: the same envelopes published on core NATS
into a JetStream stream with file storage (the server stores them; publish then wait
until the stream holds them all), then consumed with a pull consumer.

Writes benchmarks/results/events.json and events.md.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import statistics
import tempfile
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import grpc
import zmq

from benchmarks.harness import environment, write_result
from powerbus.bus.kernel.supervisor import ProcessGroup
from powerbus.events.v1 import events_pb2
from powerbus.nodes.sdk.events import envelope

N = 200_000
ROUNDS = 3
TARGET_PER_S = 500_000
NATS_URL = "nats://127.0.0.1:4222"
_IDLE_S = 2.0


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


def _publisher(endpoint: str, source: str, count: int, bind: bool, pipe: Connection) -> None:
    frames = build(source, count)
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
    started = time.perf_counter()
    # Two sends with SNDMORE cost half of send_multipart's per-call overhead in pyzmq.
    send, more = sock.send, zmq.SNDMORE
    for topic, raw in frames:
        send(topic, more)
        send(raw)
    pipe.send((time.time(), time.perf_counter() - started))
    sock.close()
    context.term()


def _subscriber(endpoint: str, count: int, bind: bool, pipe: Connection) -> None:
    context = zmq.Context()
    sock = context.socket(zmq.SUB)
    sock.setsockopt(zmq.RCVHWM, 100_000)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    if bind:
        sock.bind(endpoint)
    else:
        sock.connect(endpoint)
    pipe.send("ready")
    kept: list[bytes] = []
    recv, keep = sock.recv, kept.append
    if sock.poll(60 * 1000):
        first = last = time.perf_counter()
    while len(kept) < count:
        try:
            recv(zmq.NOBLOCK)  # the topic frame
        except zmq.Again:
            last = time.perf_counter()
            if not sock.poll(int(_IDLE_S * 1000)):
                break
            continue
        keep(recv())
    last = max(last, time.perf_counter()) if len(kept) == count else last
    seen = {events_pb2.Envelope.FromString(raw).sequence for raw in kept}
    missing = sorted(set(range(1, count + 1)) - seen)
    pipe.send((len(kept), last - first, missing))
    sock.close(linger=0)
    context.term()


def _run_pair(pub_end: str, sub_end: str, *, pub_binds: bool, source: str) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    sub_pipe, sub_child = ctx.Pipe()
    pub_pipe, pub_child = ctx.Pipe()
    sub = ctx.Process(target=_subscriber, args=(sub_end, N, False, sub_child))
    pub = ctx.Process(target=_publisher, args=(pub_end, source, N, pub_binds, pub_child))
    sub.start()
    pub.start()
    try:
        assert sub_pipe.poll(60) and sub_pipe.recv() == "ready"
        assert pub_pipe.poll(120) and pub_pipe.recv() == "ready"
        time.sleep(0.5)  # let the subscription reach the publisher side
        send_started = time.time()
        pub_pipe.send("go")
        assert pub_pipe.poll(120)
        _sent_at, send_s = pub_pipe.recv()
        assert sub_pipe.poll(120)
        received, span_s, missing = sub_pipe.recv()
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
    }


def raw_round(i: int) -> dict[str, Any]:
    port = _free_port()
    result = _run_pair(
        f"tcp://127.0.0.1:{port}", f"tcp://127.0.0.1:{port}", pub_binds=True, source=f"raw-{i}"
    )
    result["missing"] = len(result["missing"])
    return result


def forwarder_round(i: int, bus: dict[str, object]) -> dict[str, Any]:
    source = f"bench-{i}"
    result = _run_pair(
        f"tcp://{bus['events_in']}", f"tcp://{bus['events_out']}", pub_binds=False, source=source
    )
    grpc_address = str(bus["grpc"])
    stored_at = asyncio.run(_wait_stored(grpc_address, source, N))
    result["stored_per_s"] = round(N / (stored_at - result.pop("send_started")), 0)
    missing: list[int] = result.pop("missing")
    result["missing_live"] = len(missing)
    result["missing_after_replay"] = asyncio.run(_replay_missing(grpc_address, source, missing))
    replay_s = asyncio.run(_replay_all(grpc_address, source))
    result["replay_per_s"] = round(N / replay_s, 0)
    return result


async def _wait_stored(address: str, source: str, count: int) -> float:
    async with grpc.aio.insecure_channel(address) as channel:
        latest = channel.unary_unary(
            "/powerbus.events.v1.EventReplay/GetLatestSequences",
            request_serializer=events_pb2.GetLatestSequencesRequest.SerializeToString,
            response_deserializer=events_pb2.GetLatestSequencesResponse.FromString,
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            reply = await latest(events_pb2.GetLatestSequencesRequest(sources=[source]), timeout=5)
            if reply.sequences and reply.sequences[0].latest_sequence >= count:
                return time.time()
            await asyncio.sleep(0.02)
    raise TimeoutError(f"{source}: not all {count} stored within 300 s")


def _replay_call(channel: grpc.aio.Channel) -> Any:
    return channel.unary_stream(
        "/powerbus.events.v1.EventReplay/Replay",
        request_serializer=events_pb2.ReplayRequest.SerializeToString,
        response_deserializer=events_pb2.Envelope.FromString,
    )


async def _replay_missing(address: str, source: str, missing: list[int]) -> int:
    """How many of ``missing`` the store cannot give back."""
    still = set(missing)
    async with grpc.aio.insecure_channel(address) as channel:
        replay = _replay_call(channel)
        for first, last in _ranges(missing):
            request = events_pb2.ReplayRequest(source=source, from_sequence=first, to_sequence=last)
            async for env in replay(request, timeout=60):
                still.discard(env.sequence)
    return len(still)


async def _replay_all(address: str, source: str) -> float:
    async with grpc.aio.insecure_channel(address) as channel:
        replay = _replay_call(channel)
        started = time.perf_counter()
        n = 0
        async for _env in replay(
            events_pb2.ReplayRequest(source=source, from_sequence=1), timeout=120
        ):
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


async def nats_round(i: int) -> dict[str, Any]:
    """Publish the same envelopes into a file-stored JetStream stream, then consume them."""
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig, StorageType

    frames = build(f"nats-{i}", N)
    nc = await nats.connect(NATS_URL, connect_timeout=5)
    js = nc.jetstream(timeout=10)
    tag = f"{i}_{uuid.uuid4().hex[:8]}"
    stream = f"POWERBUS_BENCH_{tag}"
    subject = f"bench{tag}.events.billing.bill.issued"
    try:
        await js.add_stream(
            name=stream, subjects=[f"bench{tag}.events.>"], storage=StorageType.FILE
        )
        started = time.perf_counter()
        # Fire-and-forget into the stream, like our PUB side; done when the server has
        # stored them all (per-message acked publishes run at a few thousand a second).
        for _topic, raw in frames:
            await nc.publish(subject, raw)
        await nc.flush(timeout=60)
        deadline = time.monotonic() + 60
        while (await js.stream_info(stream)).state.messages < N:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)
        publish_s = time.perf_counter() - started
        stored = (await js.stream_info(stream)).state.messages
        consumer = await js.pull_subscribe(
            subject,
            durable=f"bench{tag}",
            stream=stream,
            config=ConsumerConfig(ack_policy=AckPolicy.ALL, max_ack_pending=50_000),
        )
        got = 0
        started = time.perf_counter()
        deadline = time.monotonic() + 120
        while got < stored and time.monotonic() < deadline:
            batch = await consumer.fetch(5000, timeout=10)
            got += len(batch)
            for msg in batch:
                events_pb2.Envelope.FromString(msg.data)  # the same decoding our side does
            await batch[-1].ack()  # AckPolicy.ALL: the last acknowledges the whole batch
        consume_s = time.perf_counter() - started
    finally:
        try:
            await js.delete_stream(stream)
        finally:
            await nc.close()
    return {
        "stored": stored,
        "publish_stored_per_s": round(N / publish_s, 0),
        "consume_per_s": round(got / consume_s, 0),
    }


def _median(rounds: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in rounds))


def main() -> Path:
    work = Path(tempfile.mkdtemp(prefix="powerbus-bench-events-"))
    group = ProcessGroup(directory=work)
    raw: list[dict[str, Any]] = []
    fwd: list[dict[str, Any]] = []
    nats_rounds: list[dict[str, Any]] = []
    nats_error = ""
    try:
        handle = group.start_bus(log_level="WARNING", db=f"sqlite:///{work / 'bus.db'}")
        for i in range(ROUNDS):
            # Alternate which goes first, so neither always runs on a warmer machine.
            if i % 2 == 0:
                raw.append(raw_round(i))
                fwd.append(forwarder_round(i, handle.state))
            else:
                fwd.append(forwarder_round(i, handle.state))
                raw.append(raw_round(i))
            try:
                nats_rounds.append(asyncio.run(nats_round(i)))
            except Exception as error:  # no server on this machine: say so in the results
                nats_error = f"{type(error).__name__}: {error}"
    finally:
        group.close()
    summary = {
        "raw_zmq_events_per_s": _median(raw, "events_per_s"),
        "forwarder_events_per_s": _median(fwd, "events_per_s"),
        "forwarder_stored_per_s": _median(fwd, "stored_per_s"),
        "forwarder_missing_live": max(r["missing_live"] for r in fwd),
        "forwarder_missing_after_replay": max(r["missing_after_replay"] for r in fwd),
        "replay_per_s": _median(fwd, "replay_per_s"),
        "publisher_send_per_s": _median(fwd, "publisher_send_per_s"),
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
        "targets": {"forwarder_events_per_s": TARGET_PER_S, "forwarder_missing_after_replay": 0},
        "summary": summary,
        "raw_rounds": raw,
        "forwarder_rounds": fwd,
        "nats_rounds": nats_rounds,
        "nats_error": nats_error,
    }
    return write_result("events", data, _table(summary, nats_error))


def _table(s: dict[str, float], nats_error: str) -> str:
    def row(what: str, value: float | None, target: str = "") -> str:
        shown = "n/a" if value is None else f"{value:,.0f}"
        return f"| {what} | {shown} | {target} |"

    lines = [
        f"Events, {N:,} envelopes per round, median of {ROUNDS} interleaved rounds.",
        "",
        "| measure | figure | target |",
        "|---|---:|---|",
        row("raw ZeroMQ PUB→SUB, events/s (the limit)", s["raw_zmq_events_per_s"]),
        row(
            "through the forwarder, persistence on, events/s",
            s["forwarder_events_per_s"],
            f"≥ {TARGET_PER_S:,}",
        ),
        row("stored by the forwarder, events/s", s["forwarder_stored_per_s"]),
        row("missed live by the subscriber", s["forwarder_missing_live"]),
        row("missing after replay", s["forwarder_missing_after_replay"], "0"),
        row("replay, events/s", s["replay_per_s"]),
        row("publisher send loop, events/s", s["publisher_send_per_s"]),
        row(
            "NATS JetStream (file) publish until stored, msgs/s",
            s.get("nats_jetstream_publish_stored_per_s"),
        ),
        row("NATS JetStream pull consume, msgs/s", s.get("nats_jetstream_consume_per_s")),
    ]
    if nats_error:
        lines += ["", f"NATS: {nats_error}"]
    return "\n".join(lines)


if __name__ == "__main__":
    print(f"wrote {main()}")
