"""``powerbus.traffic.v1.TrafficReports``: traffic the bus did not route itself.

Proxyless SDK clients and the CORBA gateway count their calls per window and send the
counts here; they land in the same :class:`TrafficRecorder` as routed calls, with their
origin, so every view of traffic shows both paths alike.

A report is counted once: a client that lost the reply sends the same (reporter,
sequence, window) again and is told ``duplicate``. The window is part of the key because
sequences restart at 1 when the reporter restarts. Each reporter (its authenticated
identity, else its host) may send ``rate`` reports a second after a burst: a reporter
sends one per window, so a flood of reports is refused RESOURCE_EXHAUSTED before it can
move the numbers alerts are raised on.

>>> # servicer = TrafficReportsServicer(recorder)
>>> # traffic_pb2_grpc.add_TrafficReportsServicer_to_server(servicer, server)
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple, TypeAlias

import grpc

from powerbus.bus.kernel.calls import CallOrigin
from powerbus.bus.kernel.errors import InvalidArgument, PowerbusError
from powerbus.bus.kernel.identity import identity_of
from powerbus.bus.kernel.peers import PeerRateLimit, peer_host
from powerbus.bus.transport.grpc_status import abort_with
from powerbus.load_balancer import StatusCode
from powerbus.monitoring.recorder import TrafficRecorder
from powerbus.monitoring.tally import BUCKET_COUNT, Sample, bucket_index
from powerbus.traffic.v1 import traffic_pb2, traffic_pb2_grpc

__all__ = ["ReportedCalls", "TrafficReportsServicer", "check_report"]

log = logging.getLogger(__name__)

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"

_ORIGINS = {
    traffic_pb2.CALL_ORIGIN_UNSPECIFIED: CallOrigin.PROXYLESS,
    traffic_pb2.CALL_ORIGIN_PROXYLESS: CallOrigin.PROXYLESS,
    traffic_pb2.CALL_ORIGIN_ROUTED: CallOrigin.ROUTED,
    traffic_pb2.CALL_ORIGIN_IIOP: CallOrigin.IIOP,
}
# Reports remembered per reporter for de-duplication; a resend comes within a few retries.
_REMEMBERED_PER_REPORTER = 256
_REMEMBERED_REPORTERS = 4096
_MAX_CALL_STATS = 10_000

ReportKey = tuple[int, int, int, int, int]


class ReportedCalls(NamedTuple):
    """The labels of one entry of a traffic report."""

    service: str
    method: str
    node_id: str
    caller: str
    code: StatusCode


def check_report(request: traffic_pb2.ReportTrafficRequest) -> list[tuple[ReportedCalls, Sample]]:
    """The report's calls as label values and samples; :class:`InvalidArgument` naming the
    first bad field.

    >>> req = traffic_pb2.ReportTrafficRequest(reporter="r", calls=[traffic_pb2.CallStats(
    ...     service="s", method="m", node_id="n", code="OK", count=2, latency_sum_s=0.004)])
    >>> [(labels.service, sample.count) for labels, sample in check_report(req)]
    [('s', 2)]
    """
    if not request.reporter:
        raise InvalidArgument("reporter", "must name the reporting node or gateway")
    if request.origin not in _ORIGINS:
        raise InvalidArgument("origin", f"unknown call origin {request.origin}")
    if len(request.calls) > _MAX_CALL_STATS:
        raise InvalidArgument("calls", f"at most {_MAX_CALL_STATS} entries per report")
    checked: list[tuple[ReportedCalls, Sample]] = []
    for i, stats in enumerate(request.calls):
        field = f"calls[{i}]"
        for name in ("service", "method", "code"):
            if not getattr(stats, name):
                raise InvalidArgument(f"{field}.{name}", "must not be empty")
        if stats.code not in StatusCode.__members__:
            raise InvalidArgument(f"{field}.code", f"not a gRPC status code name: {stats.code!r}")
        if stats.latency_sum_s < 0:
            raise InvalidArgument(f"{field}.latency_sum_s", "must not be negative")
        checked.append((_labels(stats), _sample(stats, field)))
    return checked


def _labels(stats: traffic_pb2.CallStats) -> ReportedCalls:
    return ReportedCalls(
        stats.service, stats.method, stats.node_id, stats.caller, StatusCode[stats.code]
    )


def _sample(stats: traffic_pb2.CallStats, field: str) -> Sample:
    buckets = list(stats.latency_bucket_counts)
    if not buckets:
        # No histogram sent: all calls fall where their mean does.
        buckets = [0] * BUCKET_COUNT
        if stats.count:
            buckets[bucket_index(stats.latency_sum_s / stats.count)] = stats.count
    elif len(buckets) != BUCKET_COUNT:
        raise InvalidArgument(
            f"{field}.latency_bucket_counts",
            f"has {len(buckets)} entries; gRPC's standard bounds need {BUCKET_COUNT}",
        )
    elif sum(buckets) != stats.count:
        raise InvalidArgument(
            f"{field}.latency_bucket_counts",
            f"add up to {sum(buckets)} calls, but count is {stats.count}",
        )
    return Sample(stats.count, stats.latency_sum_s, tuple(buckets), stats.bytes_in, stats.bytes_out)


class TrafficReportsServicer(traffic_pb2_grpc.TrafficReportsServicer):
    """Adds reported traffic to ``recorder``; see the module docstring."""

    def __init__(self, recorder: TrafficRecorder, *, rate: PeerRateLimit | None = None) -> None:
        self._recorder = recorder
        self._rate = rate
        self.admit: Callable[[Context], str] = _reporter_key
        """Who the reporter is (the key its rate limit is kept under), or a
        :class:`~powerbus.bus.kernel.errors.PermissionDenied` when it may not report: the bus
        puts its access control here."""
        self._seen: OrderedDict[str, OrderedDict[ReportKey, None]] = OrderedDict()
        self.reports = 0
        """Reports counted (duplicates excluded)."""

    async def ReportTraffic(
        self, request: traffic_pb2.ReportTrafficRequest, context: Context
    ) -> traffic_pb2.ReportTrafficResponse:
        try:
            reporter = self.admit(context)
            if self._rate is not None:
                self._rate.take(reporter)
            calls = check_report(request)
        except PowerbusError as error:
            await abort_with(context, error)
        if self._remember(request):
            return traffic_pb2.ReportTrafficResponse(duplicate=True)
        origin = _ORIGINS[request.origin]
        for labels, sample in calls:
            self._recorder.add(
                service=labels.service,
                method=labels.method,
                node_id=labels.node_id,
                caller=labels.caller,
                code=labels.code,
                origin=origin,
                sample=sample,
            )
        self.reports += 1
        return traffic_pb2.ReportTrafficResponse(duplicate=False)

    def _remember(self, request: traffic_pb2.ReportTrafficRequest) -> bool:
        """True if this report was counted before; remembers it otherwise."""
        key: ReportKey = (
            request.sequence,
            request.window_start.seconds,
            request.window_start.nanos,
            request.window_end.seconds,
            request.window_end.nanos,
        )
        seen = self._seen.get(request.reporter)
        if seen is None:
            seen = self._seen[request.reporter] = OrderedDict()
            if len(self._seen) > _REMEMBERED_REPORTERS:
                self._seen.popitem(last=False)
        else:
            self._seen.move_to_end(request.reporter)
        if key in seen:
            return True
        seen[key] = None
        if len(seen) > _REMEMBERED_PER_REPORTER:
            seen.popitem(last=False)
        return False


def _reporter_key(context: Context) -> str:
    identity = identity_of(context)
    return identity.name if identity.authenticated else peer_host(context.peer() or "")
