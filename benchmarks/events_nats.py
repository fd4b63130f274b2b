"""NATS JetStream as the peer a user would pick instead of the bus's forwarder: the same
envelopes published on core NATS into a JetStream stream with file storage on this
machine's server (the server stores them; publish, then wait until the stream holds them
all), then consumed with a pull consumer. One round of ``benchmarks.events``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from powerbus.events.v1 import events_pb2

__all__ = ["NATS_URL", "nats_round"]

NATS_URL = "nats://127.0.0.1:4222"


async def nats_round(i: int, frames: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """Publish the same envelopes into a file-stored JetStream stream, then consume them."""
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig, StorageType

    n = len(frames)
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
        while (await js.stream_info(stream)).state.messages < n:
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
        "publish_stored_per_s": round(n / publish_s, 0),
        "consume_per_s": round(got / consume_s, 0),
    }
