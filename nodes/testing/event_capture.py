"""Capture what a bus publishes, for tests of nodes that publish events: a real SDK
:class:`~powerbus.nodes.sdk.events.Subscriber` on the bus's ``events_out``.

>>> # envelopes = asyncio.run(capture(bus, ["billing."], done=lambda got: len(got) >= 3))
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from powerbus.bus.kernel.errors import DeadlineExceeded
from powerbus.bus.kernel.supervisor import BusHandle
from powerbus.events.v1 import events_pb2
from powerbus.nodes.sdk.events import Subscriber, SubscriberSettings

__all__ = ["capture"]


async def capture(
    bus: BusHandle,
    prefixes: Sequence[str],
    *,
    done: Callable[[list[events_pb2.Envelope]], bool],
    quiet: float = 1.0,
    timeout: float = 60.0,
) -> list[events_pb2.Envelope]:
    """Every envelope of ``prefixes`` from the start of the bus's store until ``done`` holds
    and then ``quiet`` seconds more (so a repeat published late is caught too).

    Raises :class:`DeadlineExceeded` naming what arrived if ``done`` does not hold within
    ``timeout`` seconds.
    """
    got: list[events_pb2.Envelope] = []
    settings = SubscriberSettings(sync_interval=0.3)
    async with Subscriber(
        events_out=[str(bus.state["events_out"])],
        bus=bus.grpc,
        prefixes=prefixes,
        settings=settings,
    ) as sub:
        deadline = time.monotonic() + timeout
        settled_at: float | None = None
        while time.monotonic() < deadline:
            got += await sub.receive(timeout=0.2)
            if settled_at is None and done(got):
                settled_at = time.monotonic()
            if settled_at is not None and time.monotonic() - settled_at >= quiet:
                return got
    topics = sorted({e.topic for e in got})
    raise DeadlineExceeded(f"events not complete after {timeout}s: {len(got)} of {topics}")
