"""Publishers and subscribers of events as edges of the node graph.

The bus's event side supplies them (monitoring does not import it): a publisher is an
edge from its source id into the event bus, a subscriber an edge out of it, each with its
events per second; a subscriber's also carries its lag (events behind, summed over
sources).

>>> edge = EventEdge(node="billing-1", role=EventRole.PUBLISHES, topics=("billing.bill.issued",),
...                  rate_per_s=12.5, events=100)
>>> edge.as_json()["role"]
'publishes'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

__all__ = ["EventEdge", "EventEdges", "EventRole"]


class EventRole(str, Enum):
    """Which way an event edge points."""

    PUBLISHES = "publishes"
    SUBSCRIBES = "subscribes"


@dataclass(frozen=True, slots=True, kw_only=True)
class EventEdge:
    """One publisher or subscriber as the bus knows it."""

    node: str
    """The publisher's source id, or the subscriber's reported name."""
    role: EventRole
    topics: tuple[str, ...]
    """A publisher's latest topic; a subscriber's prefixes."""
    rate_per_s: float
    events: int
    """Forwarded from the publisher, or handled by the subscriber, since start."""
    lag: int | None = None
    """A subscriber's events behind, over every source (None for publishers)."""

    def as_json(self) -> dict[str, object]:
        return {
            "node": self.node,
            "role": self.role.value,
            "topics": list(self.topics),
            "rate_per_s": round(self.rate_per_s, 1),
            "events": self.events,
            "lag": self.lag,
        }


EventEdges = Callable[[], list[EventEdge]]
"""What the bus hands monitoring to read the edges when a graph is drawn."""
