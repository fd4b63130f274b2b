"""The bus's events side: an XSUB/XPUB forwarder that stores every envelope it forwards,
``EventReplay`` over the store, and retention pruning (docs/events.md).

>>> from powerbus.bus.events import EventBus, EventBusConfig
>>> EventBusConfig(db="sqlite://").retention.days
7
"""

from powerbus.bus.events.errors import ReplayGone
from powerbus.bus.events.forwarder import Forwarder, ForwarderSettings
from powerbus.bus.events.replay import EventReplayService
from powerbus.bus.events.service import EventBus, EventBusConfig
from powerbus.bus.events.stats import EventStats
from powerbus.bus.events.store import EventStore, SourceMark, StoredRow

__all__ = [
    "EventBus",
    "EventBusConfig",
    "EventReplayService",
    "EventStats",
    "EventStore",
    "Forwarder",
    "ForwarderSettings",
    "ReplayGone",
    "SourceMark",
    "StoredRow",
]
