"""``powerbus.events.v1.EventReplay``: a thin service over :class:`EventStore`, plus where
the event sockets listen (``GetEndpoints``) and the subscribers' reports
(``ReportPosition``, kept in a :class:`SubscriberBook`).

Replay streams the stored bytes as they are (an identity serializer on a generic
handler): no parse and re-encode per envelope, and "byte for byte as published" holds
by construction. Store calls block, so they run in a worker thread, one chunk at a time,
each chunk read in a short transaction of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import grpc
from google.protobuf import timestamp_pb2

from powerbus.bus.events.lag import SubscriberBook
from powerbus.bus.events.store import EventStore
from powerbus.bus.kernel.errors import PowerbusError
from powerbus.bus.transport.grpc_status import abort_with
from powerbus.events.v1 import events_pb2

__all__ = ["SERVICE", "EventReplayService"]

SERVICE = "powerbus.events.v1.EventReplay"


def _raw(data: bytes) -> bytes:
    return data


class EventReplayService:
    """Replays stored envelopes, and tells where each source stands.

    >>> # server.add_generic_rpc_handlers((EventReplayService(store).rpc_handler(),))
    """

    def __init__(
        self,
        store: EventStore,
        *,
        endpoints: Callable[[], tuple[str, str]] = lambda: ("", ""),
        subscribers: SubscriberBook | None = None,
    ) -> None:
        self._store = store
        self._endpoints = endpoints
        self.subscribers = subscribers if subscribers is not None else SubscriberBook()

    def rpc_handler(self) -> grpc.GenericRpcHandler:
        """The gRPC handler of both methods, for ``server.add_generic_rpc_handlers``."""
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Replay": grpc.unary_stream_rpc_method_handler(
                    self.replay,
                    request_deserializer=events_pb2.ReplayRequest.FromString,
                    response_serializer=_raw,
                ),
                "GetLatestSequences": grpc.unary_unary_rpc_method_handler(
                    self.latest,
                    request_deserializer=events_pb2.GetLatestSequencesRequest.FromString,
                    response_serializer=events_pb2.GetLatestSequencesResponse.SerializeToString,
                ),
                "GetEndpoints": grpc.unary_unary_rpc_method_handler(
                    self.endpoints,
                    request_deserializer=events_pb2.GetEndpointsRequest.FromString,
                    response_serializer=events_pb2.GetEndpointsResponse.SerializeToString,
                ),
                "ReportPosition": grpc.unary_unary_rpc_method_handler(
                    self.report_position,
                    request_deserializer=events_pb2.ReportPositionRequest.FromString,
                    response_serializer=events_pb2.ReportPositionResponse.SerializeToString,
                ),
            },
        )

    async def replay(self, request: events_pb2.ReplayRequest, context: Any) -> AsyncIterator[bytes]:
        """Envelopes ``from_sequence``..``to_sequence`` of ``source``, as stored bytes."""
        try:
            chunks: Iterator[list[bytes]] = await asyncio.to_thread(
                self._store.replay, request.source, request.from_sequence, request.to_sequence
            )
            while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
                for raw in chunk:
                    yield raw
        except PowerbusError as error:
            await abort_with(context, error)

    async def latest(
        self, request: events_pb2.GetLatestSequencesRequest, _context: Any
    ) -> events_pb2.GetLatestSequencesResponse:
        """Each asked source's marks (every source when none is named)."""
        marks = await asyncio.to_thread(self._store.latest, list(request.sources))
        response = events_pb2.GetLatestSequencesResponse()
        for mark in marks:
            stamp = timestamp_pb2.Timestamp()
            stamp.FromMicroseconds(mark.latest_published_us)
            response.sequences.add(
                source=mark.source,
                latest_sequence=mark.latest_sequence,
                earliest_sequence=mark.earliest_sequence,
                latest_time=stamp,
            )
        return response

    async def endpoints(
        self, _request: events_pb2.GetEndpointsRequest, _context: Any
    ) -> events_pb2.GetEndpointsResponse:
        """The bound ``events_in`` and ``events_out`` addresses."""
        events_in, events_out = self._endpoints()
        return events_pb2.GetEndpointsResponse(events_in=events_in, events_out=events_out)

    async def report_position(
        self, request: events_pb2.ReportPositionRequest, context: Any
    ) -> events_pb2.ReportPositionResponse:
        """Remember a subscriber's positions (its lag is computed when asked)."""
        try:
            self.subscribers.report(
                request.subscriber,
                prefixes=list(request.prefixes),
                positions=dict(request.positions),
                delivered=request.delivered,
            )
        except PowerbusError as error:
            await abort_with(context, error)
        return events_pb2.ReportPositionResponse()
