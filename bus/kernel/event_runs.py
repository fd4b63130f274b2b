"""A run of envelopes in one ZeroMQ frame, as events.proto describes: the first envelope,
carrying the rest in its ``following`` field. Shared by the SDK's publisher and subscriber
and the bus's forwarder and store.

Why one frame rather than a frame per envelope: every frame costs a receiver a call into
pyzmq (~1 µs), and the bus's store thread receives every frame the forwarder carries; a
run of 256 in one frame is one call. Why this shape rather than a message of its own: a
plain SUB that knows only ``Envelope`` still decodes every frame, and sees the run.

The frame is built by concatenating bytes, not by re-encoding: protobuf lets a message's
fields come in any order, and the entries of a repeated field concatenate, so the first
envelope's bytes followed by each other envelope as a field-8 entry decode as the first
envelope with the rest in ``following``.

>>> from powerbus.events.v1 import events_pb2
>>> raws = [events_pb2.Envelope(source="b-1", sequence=n).SerializeToString() for n in (4, 5, 6)]
>>> [e.sequence for e in expand(events_pb2.Envelope.FromString(run_frame(raws)))]
[4, 5, 6]
>>> [events_pb2.Envelope.FromString(r).sequence for r in split_frame(run_frame(raws))]
[4, 5, 6]
"""

from __future__ import annotations

from collections.abc import Sequence

from powerbus.events.v1 import events_pb2

__all__ = ["expand", "run_frame", "split_frame"]

_FOLLOWING = bytes(((8 << 3) | 2,))  # field 8 (following), length-delimited


def run_frame(envelopes: Sequence[bytes]) -> bytes:
    """One frame of a run: ``envelopes`` (serialised, in sequence order, none with a
    ``following`` of its own) as the first with the rest in its ``following``."""
    head, *rest = envelopes
    parts = [head]
    for raw in rest:
        parts += (_FOLLOWING, _varint(len(raw)), raw)
    return b"".join(parts)


def expand(envelope: events_pb2.Envelope) -> list[events_pb2.Envelope]:
    """The envelopes a decoded frame carries, in order, none with ``following`` set
    (``envelope`` itself is cleared of them)."""
    if not envelope.following:
        return [envelope]
    rest = list(envelope.following)
    envelope.ClearField("following")
    return [envelope, *rest]


def split_frame(raw: bytes) -> list[bytes]:
    """The serialised envelopes of a frame, in order (the frame itself if it is one)."""
    envelope = events_pb2.Envelope.FromString(raw)
    if not envelope.following:
        return [raw]
    return [e.SerializeToString() for e in expand(envelope)]


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)
