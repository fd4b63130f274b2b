"""What the node remembers besides readings: the idempotency keys of requests, and the
end-device events it stored.

Idempotency (the proto's service comment): the pair (header.source, header.message_id)
names a request; a repeat with the same payload gets the first response back, a repeat
with a different payload is ALREADY_EXISTS. The payload is compared by a digest of the
request without its header (a resend may carry a new timestamp). Keys are kept for at
least ``KEEP`` and then forgotten.

>>> from powerbus.common.v1 import common_pb2
>>> request = pb.ReadMeterRequest(header=common_pb2.MessageHeader(message_id="m1", source="s"))
>>> len(digest(request))
64
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TypeVar

import sqlalchemy as sa
from google.protobuf import message
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from powerbus.bus.kernel.database import read_transaction, write_transaction
from powerbus.bus.kernel.errors import AlreadyExists, InvalidArgument
from powerbus.metering.v1 import metering_pb2 as pb
from powerbus.nodes.metering.convert import time_from_proto
from powerbus.nodes.metering.store._tables import device_events, requests

__all__ = ["KEEP", "DeviceEvents", "RequestKeys", "digest"]

KEEP = timedelta(hours=48)
"""How long idempotency keys are remembered (the proto promises at least 24 h)."""

R = TypeVar("R", bound=message.Message)


def digest(request: message.Message) -> str:
    """SHA-256 of the request without its ``header`` field, deterministic encoding."""
    copy = type(request)()
    copy.CopyFrom(request)
    if "header" in copy.DESCRIPTOR.fields_by_name:
        copy.ClearField("header")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


class RequestKeys:
    """Responses by idempotency key, in the node's database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def key(self, header: message.Message, *, method: str) -> tuple[str, str]:
        """(source, message_id) of a header; INVALID_ARGUMENT when message_id is empty."""
        source = str(getattr(header, "source", ""))
        message_id = str(getattr(header, "message_id", ""))
        if not message_id:
            raise InvalidArgument("header.message_id", f"{method}: needed as idempotency key")
        return source, message_id

    def find(
        self, key: tuple[str, str], request: message.Message, response_type: type[R]
    ) -> R | None:
        """The first response to ``key``, or None when the key is new; ALREADY_EXISTS when
        it was used for a different request."""
        c = requests.c
        query = sa.select(c.digest, c.response).where(c.source == key[0], c.message_id == key[1])
        with read_transaction(self.engine) as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        if row.digest != digest(request):
            raise AlreadyExists(
                "header.message_id", f"{key[1]!r} of {key[0]!r} was used for a different request"
            )
        return response_type.FromString(row.response)

    def remember(
        self,
        key: tuple[str, str],
        request: message.Message,
        response: message.Message,
        *,
        method: str,
        conn: Connection | None = None,
    ) -> None:
        """Keep ``response`` under ``key`` (in ``conn``'s transaction when given); a key
        already remembered (a concurrent repeat) keeps its first response."""
        values = {
            "source": key[0],
            "message_id": key[1],
            "method": method,
            "digest": digest(request),
            "response": response.SerializeToString(deterministic=True),
            "created_at": datetime.now(timezone.utc),
        }
        # A savepoint, so a concurrent repeat's key only undoes this insert.
        with contextlib.suppress(IntegrityError):
            if conn is not None:
                with conn.begin_nested():
                    conn.execute(sa.insert(requests).values(values))
            else:
                with write_transaction(self.engine) as own:
                    own.execute(sa.insert(requests).values(values))

    def forget_older(self, now: datetime) -> int:
        """Drop keys older than :data:`KEEP`; returns how many."""
        with write_transaction(self.engine) as conn:
            done = conn.execute(sa.delete(requests).where(requests.c.created_at < now - KEEP))
        return int(done.rowcount or 0)


class DeviceEvents:
    """End-device events, deduplicated by mrid."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, conn: Connection, events: Sequence[pb.EndDeviceEvent]) -> list[pb.EndDeviceEvent]:
        """Store ``events`` in ``conn``'s transaction; returns those that were new."""
        if not events:
            return []
        mrids = sorted({e.mrid for e in events})
        known = set(
            conn.execute(
                sa.select(device_events.c.mrid).where(device_events.c.mrid.in_(mrids))
            ).scalars()
        )
        new: list[pb.EndDeviceEvent] = []
        for event in events:
            if event.mrid in known:
                continue
            known.add(event.mrid)
            new.append(event)
        if new:
            conn.execute(
                sa.insert(device_events),
                [
                    {
                        "mrid": e.mrid,
                        "meter_id": e.meter.meter_id,
                        "created_at": time_from_proto(e.created_date_time),
                        "severity": int(e.severity),
                        "name": e.event_type.name,
                        "body": e.SerializeToString(deterministic=True),
                    }
                    for e in new
                ],
            )
        return new

    def page(
        self,
        *,
        meter_ids: Sequence[str] = (),
        start: datetime | None = None,
        end: datetime | None = None,
        min_severity: int = 0,
        names: Sequence[str] = (),
        page_size: int = 0,
        page_token: str = "",
    ) -> tuple[list[pb.EndDeviceEvent], str]:
        """Events newest first, a page at a time (``ListEndDeviceEvents``)."""
        c = device_events.c
        size = page_size if page_size > 0 else 500
        query = sa.select(c.body, c.created_at, c.mrid)
        if meter_ids:
            query = query.where(c.meter_id.in_(sorted(set(meter_ids))))
        if start is not None:
            query = query.where(c.created_at >= start)
        if end is not None:
            query = query.where(c.created_at < end)
        if min_severity:
            query = query.where(c.severity >= min_severity)
        if names:
            query = query.where(c.name.in_(sorted(set(names))))
        if page_token:
            at, mrid = _decode(page_token)
            query = query.where(
                sa.tuple_(c.created_at, c.mrid)
                < sa.tuple_(sa.literal(at, c.created_at.type), sa.literal(mrid))
            )
        query = query.order_by(c.created_at.desc(), c.mrid.desc()).limit(min(size, 5000) + 1)
        with read_transaction(self.engine) as conn:
            rows = conn.execute(query).all()
        page = [pb.EndDeviceEvent.FromString(r.body) for r in rows[:size]]
        token = _encode(rows[size - 1].created_at, rows[size - 1].mrid) if len(rows) > size else ""
        return page, token


def _encode(at: datetime, mrid: str) -> str:
    return f"{at.astimezone(timezone.utc).isoformat()}|{mrid}"


def _decode(token: str) -> tuple[datetime, str]:
    text, sep, mrid = token.partition("|")
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        at = None
    if not sep or at is None or at.tzinfo is None:
        raise InvalidArgument("page.page_token", "not a token ListEndDeviceEvents issued")
    return at, mrid
