"""Fixtures of the event proofs (defined with the helpers in ``events_support``)."""

from events_support import actor, publisher, subscriber

__all__ = ["actor", "publisher", "subscriber"]
