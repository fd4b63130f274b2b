"""``/metrics`` for events: publishers' and subscribers' counts and each subscriber's lag.

Registered into monitoring's :class:`~prometheus_client.CollectorRegistry` by the bus;
read at scrape time from the forwarder's counters, the subscribers' reports and the
cached latest sequences (no database call in a scrape).

================================================  ==========================================
``powerbus_events_forwarded_total``               envelopes forwarded by this bus
``powerbus_events_stored_total``                  envelopes written to the store
``powerbus_events_published_total``               envelopes forwarded, by source
``powerbus_event_subscriber_delivered_total``     envelopes a subscriber handled, by
                                                  subscriber (as it last reported)
``powerbus_event_subscriber_lag``                 latest stored − position, by subscriber
                                                  and source
================================================  ==========================================
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from powerbus.bus.events.service import EventBus

__all__ = ["EventsCollector"]


class EventsCollector(Collector):
    """Exports ``events`` (the bus's :class:`EventBus`) at scrape time."""

    def __init__(self, events: EventBus) -> None:
        self._events = events

    def collect(self) -> Iterator[Metric]:
        forwarded = CounterMetricFamily(
            "powerbus_events_forwarded", "Envelopes forwarded by this bus."
        )
        stored = CounterMetricFamily("powerbus_events_stored", "Envelopes written to the store.")
        published = CounterMetricFamily(
            "powerbus_events_published", "Envelopes forwarded, by source.", labels=["source"]
        )
        forwarder = self._events.forwarder
        if forwarder is not None:
            stats = forwarder.stats
            forwarded.add_metric([], stats.forwarded)
            stored.add_metric([], stats.stored)
            for source, seen in sorted(list(stats.sources.items())):
                published.add_metric([source], seen.events)
        delivered = CounterMetricFamily(
            "powerbus_event_subscriber_delivered",
            "Envelopes a subscriber handled since it started, as it last reported.",
            labels=["subscriber"],
        )
        lag = GaugeMetricFamily(
            "powerbus_event_subscriber_lag",
            "Latest stored sequence minus the subscriber's position, by source.",
            labels=["subscriber", "source"],
        )
        book = self._events.subscribers
        for entry in book.subscribers():
            delivered.add_metric([entry.subscriber], entry.delivered)
        for item in book.lags(self._events.latest):
            lag.add_metric([item.subscriber, item.source], item.lag)
        yield from (forwarded, stored, published, delivered, lag)
