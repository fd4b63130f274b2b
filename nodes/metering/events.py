"""The metering node's events, staged in the SDK outbox inside the transaction that
stores what they announce: ``metering.readings.received`` for a stored batch,
``metering.end_device_event.reported`` for each new end-device event, and
``metering.gateway.quality_reported`` for each stored poll of a line (``quality.py``).

End-device events the poller raises itself have an mrid made of the meter, the event's
name and the interval end, so a poll that is repeated (a retry, a takeover) does not
report the same event twice.

>>> from datetime import datetime, timezone
>>> event = device_event("M1", "no_response", datetime(2026, 12, 4, tzinfo=timezone.utc),
...                      reason="no answer", severity=pb.EVENT_SEVERITY_WARNING)
>>> event.mrid, event.event_type.name
('M1/no_response/2026-12-04T00:00:00+00:00', 'no_response')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy.engine import Connection

from powerbus.common.v1 import common_pb2
from powerbus.events.v1 import events_pb2
from powerbus.metering.v1 import metering_pb2 as pb
from powerbus.nodes.metering.convert import time_to_proto
from powerbus.nodes.metering.journal import DeviceEvents
from powerbus.nodes.sdk.events import Outbox

__all__ = ["MeteringEvents", "device_event"]

# CIM EndDeviceEventType codes (IEC 61968-9 annex E) where one exists: type 3 electric
# meter; domain 12 communication / 26 metrology / 36 time; event 67 lost, 216 occurred.
_CODES: Mapping[str, tuple[int, int, int, int]] = {
    "no_response": (3, 12, 0, 67),
    "communication_restored": (3, 12, 0, 216),
    "pulse_wire_break": (3, 26, 38, 67),
    "meter_reset": (3, 26, 0, 214),
    "clock_reset": (3, 36, 0, 214),
}


def device_event(
    meter_id: str,
    name: str,
    at: datetime,
    *,
    reason: str,
    severity: pb.EventSeverity.ValueType,
    details: Mapping[str, str] | None = None,
) -> pb.EndDeviceEvent:
    """An event the node raises about ``meter_id`` at ``at``."""
    parts = _CODES.get(name, (0, 0, 0, 0))
    mrid = ".".join(str(p) for p in parts) if parts[0] else ""
    return pb.EndDeviceEvent(
        mrid=f"{meter_id}/{name}/{at.isoformat()}",
        created_date_time=time_to_proto(at),
        reason=reason,
        severity=severity,
        event_type=pb.EndDeviceEventType(
            mrid=mrid,
            type=parts[0],
            domain=parts[1],
            sub_domain=parts[2],
            event_or_action=parts[3],
            name=name,
        ),
        meter=common_pb2.MeterRef(meter_id=meter_id),
        details=[pb.EndDeviceEventDetail(name=k, value=v) for k, v in (details or {}).items()],
    )


class MeteringEvents:
    """Stores end-device events and stages the node's events in ``outbox`` (None: the
    events are stored, nothing is published)."""

    def __init__(self, store: DeviceEvents, outbox: Outbox | None) -> None:
        self.store = store
        self.outbox = outbox

    def device_events(self, conn: Connection, events: Sequence[pb.EndDeviceEvent]) -> int:
        """Store the events new by mrid and stage one event each; returns how many."""
        new = self.store.add(conn, events)
        if new and self.outbox is not None:
            self.outbox.add_many(
                conn, [events_pb2.EndDeviceEventReported(end_device_event=e) for e in new]
            )
        return len(new)

    def gateway_quality(self, conn: Connection, report: events_pb2.GatewayQualityReported) -> None:
        """Stage ``metering.gateway.quality_reported`` for one stored poll of a line."""
        if self.outbox is not None:
            self.outbox.add(conn, report)

    def readings(
        self,
        conn: Connection,
        *,
        message_id: str,
        source: str,
        meter_ids: Sequence[str],
        start: datetime,
        end: datetime,
        accepted: int,
        rejected: int,
        estimated: int,
    ) -> None:
        """Stage ``metering.readings.received`` for a stored batch."""
        if self.outbox is None or not meter_ids:
            return
        self.outbox.add(
            conn,
            events_pb2.ReadingsReceived(
                message_id=message_id,
                batch_source=source,
                meter_ids=sorted(set(meter_ids)),
                period=common_pb2.Period(start=time_to_proto(start), end=time_to_proto(end)),
                accepted=accepted,
                rejected=rejected,
                estimated=estimated,
            ),
        )
