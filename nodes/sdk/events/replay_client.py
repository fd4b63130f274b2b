"""The SDK's side of ``EventReplay``: every call has a deadline, and gRPC failures come
back as the kernel's errors.

>>> # client = ReplayClient(grpc.aio.insecure_channel(bus))
>>> # marks = await client.latest(["billing-1"])       # {"billing-1": SourceSequence}
>>> # async for env in client.replay("billing-1", 5): ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import grpc

from powerbus.bus.kernel.errors import DeadlineExceeded, PowerbusError, error_from_status
from powerbus.bus.transport.grpc_status import from_grpc
from powerbus.events.v1 import events_pb2

__all__ = ["ReplayClient"]

_SERVICE = "/powerbus.events.v1.EventReplay/"


def _error(error: grpc.aio.AioRpcError, what: str) -> PowerbusError:
    if error.code() is grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"{what}: no answer from the bus in time")
    return error_from_status(from_grpc(error.code()), f"{what}: {error.details()}")


class ReplayClient:
    """``GetLatestSequences`` and ``Replay`` on one channel (the caller owns it)."""

    def __init__(
        self, channel: grpc.aio.Channel, *, timeout: float = 5.0, replay_timeout: float = 60.0
    ) -> None:
        self._latest = channel.unary_unary(
            _SERVICE + "GetLatestSequences",
            request_serializer=events_pb2.GetLatestSequencesRequest.SerializeToString,
            response_deserializer=events_pb2.GetLatestSequencesResponse.FromString,
        )
        self._replay = channel.unary_stream(
            _SERVICE + "Replay",
            request_serializer=events_pb2.ReplayRequest.SerializeToString,
            response_deserializer=events_pb2.Envelope.FromString,
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
