"""Building envelopes, and the topic of each payload message of events.proto.

>>> from powerbus.events.v1 import events_pb2
>>> topic_of(events_pb2.NodeStatusChanged())
'registry.node.status_changed'
>>> env = envelope("billing-1", 7, events_pb2.BillIssued(bill_id="B1"))
>>> (env.topic, env.sequence, env.payload.Is(events_pb2.BillIssued.DESCRIPTOR))
('billing.bill.issued', 7, True)
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping

from google.protobuf import message

from powerbus.bus.kernel.errors import InvalidArgument
from powerbus.events.v1 import events_pb2

__all__ = ["TOPICS", "envelope", "topic_of"]

TOPICS: Mapping[str, str] = {
    "powerbus.events.v1.NodeStatusChanged": "registry.node.status_changed",
    "powerbus.events.v1.AlertRaised": "monitoring.alert.raised",
    "powerbus.events.v1.AlertCleared": "monitoring.alert.cleared",
    "powerbus.events.v1.ReadingsReceived": "metering.readings.received",
    "powerbus.events.v1.EndDeviceEventReported": "metering.end_device_event.reported",
    "powerbus.events.v1.GatewayQualityReported": "metering.gateway.quality_reported",
    "powerbus.events.v1.BillIssued": "billing.bill.issued",
    "powerbus.events.v1.BillingRunFinished": "billing.run.finished",
    "powerbus.events.v1.PaymentPosted": "payment.payment.posted",
    "powerbus.events.v1.PaymentReversed": "payment.payment.reversed",
    "powerbus.events.v1.ReconciliationFinished": "payment.reconciliation.finished",
    "powerbus.events.v1.TicketStatusChanged": "crm.ticket.status_changed",
}
"""Payload message (full name) → its topic, as each message's comment in events.proto says."""


def topic_of(payload: message.Message) -> str:
    """The topic a payload of events.proto is published under."""
    name = payload.DESCRIPTOR.full_name
    try:
        return TOPICS[name]
    except KeyError:
        raise InvalidArgument("payload", f"{name} has no topic; pass topic= explicitly") from None


def envelope(
    source: str,
    sequence: int,
    payload: message.Message,
    *,
    topic: str | None = None,
    headers: Mapping[str, str] | None = None,
    now: float | None = None,
) -> events_pb2.Envelope:
    """A new envelope (fresh event_id, time now) of ``payload`` from ``source``."""
    env = events_pb2.Envelope(
        topic=topic or topic_of(payload),
        source=source,
        sequence=sequence,
        event_id=str(uuid.uuid4()),
        headers=dict(headers or {}),
    )
    env.time.FromNanoseconds(int((time.time() if now is None else now) * 1e9))
    env.payload.Pack(payload)
    return env
