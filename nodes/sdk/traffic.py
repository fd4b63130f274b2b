"""Reporting traffic the bus did not route: counts per window to ``TrafficReports``.

A proxyless client calls nodes directly, so the bus sees none of it; the client counts
its calls per (caller, service, method, node, code) with gRPC's standard latency buckets
and sends one ``ReportTrafficRequest`` per window. A report that fails is sent again with
the same sequence and window, which the bus counts once; reports that cannot be sent
within a few windows are dropped (and logged), never allowed to pile up.

>>> from powerbus.bus.kernel.calls import CallRecord
>>> window = TrafficWindow()
>>> from powerbus.load_balancer import StatusCode
>>> window.add(CallRecord("s", "Echo", "echo-1", "me", StatusCode.OK, 0.0004, 10, 20))
>>> [(c.count, c.bytes_out, list(c.latency_bucket_counts).index(1)) for c in window.stats()]
[(1, 20, 5)]
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timezone

import grpc
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from powerbus.bus.kernel.calls import LATENCY_BUCKETS_S, CallRecord
from powerbus.bus.kernel.lifecycle import Lifecycle
from powerbus.traffic.v1 import traffic_pb2, traffic_pb2_grpc

__all__ = ["TrafficReporter", "TrafficWindow"]

log = logging.getLogger(__name__)

_Key = tuple[str, str, str, str, str]  # caller, service, method, node id, code
_RETRIABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.INTERNAL}
)


@dataclass(slots=True)
class _Totals:
    count: int
    latency_sum: float
    buckets: list[int]
    bytes_in: int
    bytes_out: int


class TrafficWindow:
    """Calls counted since the window opened."""

    def __init__(self) -> None:
        self.start = datetime.now(timezone.utc)
        self._totals: dict[_Key, _Totals] = {}

    def __len__(self) -> int:
        return len(self._totals)

    def add(self, record: CallRecord) -> None:
        key = (record.caller, record.service, record.method, record.node_id, record.code)
        totals = self._totals.get(key)
        if totals is None:
            totals = self._totals[key] = _Totals(0, 0.0, [0] * (len(LATENCY_BUCKETS_S) + 1), 0, 0)
        totals.count += 1
        totals.latency_sum += record.latency_s
        totals.buckets[bisect.bisect_left(LATENCY_BUCKETS_S, record.latency_s)] += 1
        totals.bytes_in += record.bytes_in
        totals.bytes_out += record.bytes_out

    def stats(self) -> list[traffic_pb2.CallStats]:
        return [
            traffic_pb2.CallStats(
                caller=caller,
                service=service,
                method=method,
                node_id=node_id,
                code=code,
                count=t.count,
                latency_sum_s=t.latency_sum,
                latency_bucket_counts=t.buckets,
                bytes_in=t.bytes_in,
                bytes_out=t.bytes_out,
            )
            for (caller, service, method, node_id, code), t in sorted(self._totals.items())
        ]


class TrafficReporter(Lifecycle):
    """Counts :class:`CallRecord` s and reports them to the bus every ``interval`` seconds;
    :meth:`stop` sends the last window.

    :meth:`call_finished` may be called from any thread: the CORBA gateway's servants run
    on the ORB's threads, not on the event loop.

    >>> # async with TrafficReporter(channel=bus_channel, reporter="billing-1") as traffic:
    >>> #     traffic.call_finished(record)
    """

    def __init__(
        self,
        *,
        channel: grpc.aio.Channel,
        reporter: str,
        interval: float = 5.0,
        rpc_timeout: float = 2.0,
        origin: traffic_pb2.CallOrigin.ValueType = traffic_pb2.CALL_ORIGIN_PROXYLESS,
    ) -> None:
        self._stub = traffic_pb2_grpc.TrafficReportsStub(channel)
        self.reporter = reporter
        self._interval = interval
        self._rpc_timeout = rpc_timeout
        self._origin = origin
        self._window = TrafficWindow()
        self._window_lock = threading.Lock()
        self._sequence = 0
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        """Reports the bus accepted."""
        self.dropped = 0
        """Reports given up on."""

    def call_started(self, service: str, method: str, node_id: str) -> None:
        """Calls are counted when they finish."""

    def call_finished(self, record: CallRecord) -> None:
        if not record.last:
            return  # an attempt retried or out-hedged: the bus counts calls
        with self._window_lock:
            self._window.add(record)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"traffic {self.reporter}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await self.flush()

    async def flush(self) -> None:
        """Send the window now (if it counted anything) and open the next."""
        with self._window_lock:
            window, self._window = self._window, TrafficWindow()
        if not len(window):
            return
        self._sequence += 1
        request = traffic_pb2.ReportTrafficRequest(
            reporter=self.reporter,
            sequence=self._sequence,
            origin=self._origin,
            calls=window.stats(),
        )
        request.window_start.FromDatetime(window.start)
        request.window_end.FromDatetime(self._window.start)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(3),
            wait=wait_random_exponential(multiplier=0.2, max=1.0),
            retry=retry_if_exception(
                lambda e: isinstance(e, grpc.aio.AioRpcError) and e.code() in _RETRIABLE
            ),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._stub.ReportTraffic(request, timeout=self._rpc_timeout)
        except grpc.aio.AioRpcError as exc:
            self.dropped += 1
            log.warning(
                "%s: traffic report %d dropped: %s %s",
                self.reporter,
                self._sequence,
                exc.code().name,
                exc.details(),
            )
        else:
            self.sent += 1

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()
