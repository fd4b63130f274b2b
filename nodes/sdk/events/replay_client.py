"""The SDK's side of ``EventReplay``: every call has a deadline, and gRPC failures come
back as the kernel's errors.

>>> # client = ReplayClient(grpc.aio.insecure_channel(bus))
>>> # marks = await client.latest(["billing-1"])       # {"billing-1": SourceSequence}
>>> # async for env in client.replay("billing-1", 5): ...
>>> # events_in, events_out = await client.endpoints()     # the bus's event sockets
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import grpc

from powerbus.bus.kernel.addresses import HostPort, parse_host_port
from powerbus.bus.kernel.errors import (
    DeadlineExceeded,
    PowerbusError,
    Unavailable,
    error_from_status,
)
from powerbus.bus.transport.grpc_status import from_grpc
from powerbus.events.v1 import events_pb2

__all__ = ["ReplayClient", "reachable"]

_SERVICE = "/powerbus.events.v1.EventReplay/"


def _error(error: grpc.aio.AioRpcError, what: str) -> PowerbusError:
    if error.code() is grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"{what}: no answer from the bus in time")
    return error_from_status(from_grpc(error.code()), f"{what}: {error.details()}")


def reachable(endpoint: str, bus: str) -> str:
    """``endpoint`` as a node reaches it: a wildcard host (the bus bound every interface)
    becomes the host of the bus's gRPC address ``bus``.

    >>> reachable("0.0.0.0:7001", "10.0.0.5:7000")
    '10.0.0.5:7001'
    >>> reachable("127.0.0.1:7001", "localhost:7000")
    '127.0.0.1:7001'
    """
    where = parse_host_port(endpoint, field="events endpoint")
    try:
        wildcard = ipaddress.ip_address(where.host).is_unspecified
    except ValueError:  # a host name: used as it is
        wildcard = False
    if not wildcard:
        return endpoint
    return str(HostPort(parse_host_port(bus, field="bus").host, where.port))


class ReplayClient:
    """``GetLatestSequences`` and ``Replay`` on one channel (the caller owns it)."""

    def __init__(
        self, channel: grpc.aio.Channel, *, timeout: float = 5.0, replay_timeout: float = 60.0
    ) -> None:
        def unary(name: str, request: Any, response: Any) -> Any:
            return channel.unary_unary(
                _SERVICE + name,
                request_serializer=request.SerializeToString,
                response_deserializer=response.FromString,
            )

        self._latest = unary(
            "GetLatestSequences",
            events_pb2.GetLatestSequencesRequest,
            events_pb2.GetLatestSequencesResponse,
        )
        self._replay = channel.unary_stream(
            _SERVICE + "Replay",
            request_serializer=events_pb2.ReplayRequest.SerializeToString,
            response_deserializer=events_pb2.Envelope.FromString,
        )
        self._endpoints = unary(
            "GetEndpoints", events_pb2.GetEndpointsRequest, events_pb2.GetEndpointsResponse
        )
        self._report = unary(
            "ReportPosition",
            events_pb2.ReportPositionRequest,
            events_pb2.ReportPositionResponse,
        )
        self._timeout = timeout
        self._replay_timeout = replay_timeout

    async def latest(self, sources: Sequence[str] = ()) -> dict[str, events_pb2.SourceSequence]:
        """Where each source stands in the bus's store (every source when none named)."""
        request = events_pb2.GetLatestSequencesRequest(sources=list(sources))
        try:
            response = await self._latest(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as error:
            raise _error(error, "GetLatestSequences") from None
        return {s.source: s for s in response.sequences}

    async def endpoints(self) -> tuple[str, str]:
        """The bus's ``events_in`` and ``events_out`` as the bus reports them (pass each
        through :func:`reachable`). Raises Unavailable when the bus has no event sockets."""
        try:
            response = await self._endpoints(
                events_pb2.GetEndpointsRequest(), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as error:
            raise _error(error, "GetEndpoints") from None
        if not response.events_in or not response.events_out:
            raise Unavailable("GetEndpoints: the bus reported no event sockets")
        return response.events_in, response.events_out

    async def report(
        self,
        subscriber: str,
        *,
        prefixes: Sequence[str],
        positions: Mapping[str, int],
        delivered: int,
    ) -> None:
        """Tell the bus how far ``subscriber`` has got (for its lag)."""
        request = events_pb2.ReportPositionRequest(
            subscriber=subscriber,
            prefixes=list(prefixes),
            positions=dict(positions),
            delivered=delivered,
        )
        try:
            await self._report(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as error:
            raise _error(error, "ReportPosition") from None

    async def replay(
        self, source: str, first: int, last: int = 0
    ) -> AsyncIterator[events_pb2.Envelope]:
        """``source``'s stored envelopes ``first``..``last`` (0: up to the latest), in order."""
        request = events_pb2.ReplayRequest(source=source, from_sequence=first, to_sequence=last)
        call = self._replay(request, timeout=self._replay_timeout)
        try:
            async for env in call:
                yield env
        except grpc.aio.AioRpcError as error:
            raise _error(error, f"Replay {source} from {first}") from None
        finally:
            call.cancel()
