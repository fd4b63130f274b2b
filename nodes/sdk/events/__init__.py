"""Events for nodes: publish through a transactional outbox, subscribe with gap filling,
ordering and dedupe (docs/events.md).

>>> from powerbus.nodes.sdk.events import Outbox, Publisher, Subscriber, topic_of
"""

from powerbus.nodes.sdk.events.envelopes import TOPICS, envelope, topic_of
from powerbus.nodes.sdk.events.outbox import Outbox, OutboxRow, open_event_tables
from powerbus.nodes.sdk.events.positions import SqlPositions
from powerbus.nodes.sdk.events.publisher import Publisher, PublisherSettings
from powerbus.nodes.sdk.events.replay_client import ReplayClient
from powerbus.nodes.sdk.events.subscriber import Subscriber, SubscriberSettings

__all__ = [
    "TOPICS",
    "Outbox",
    "OutboxRow",
    "Publisher",
    "PublisherSettings",
    "ReplayClient",
    "SqlPositions",
    "Subscriber",
    "SubscriberSettings",
    "envelope",
    "open_event_tables",
    "topic_of",
]
