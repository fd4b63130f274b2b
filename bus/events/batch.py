"""A batch of captured envelopes, column by column, as the forwarder's store thread fills
it and the store writes it.

Why columns rather than an object per envelope: that thread handles every envelope the
forwarder carries, and at a few hundred thousand a second an object per
envelope cost more than parsing it (building a frozen dataclass ~0.8 µs), and each one
kept alive counts towards the cyclic garbage collector's next run, which then walks the
bus's whole heap. Lists of str, int and bytes allocate nothing the collector tracks.

>>> batch = EnvelopeBatch()
>>> batch.append("billing-1", 1, "billing.bill.issued", 0, b"x")
>>> len(batch), list(batch.rows(stored_ms=5))
(1, [('billing-1', 1, 'billing.bill.issued', 0, 5, b'x')])
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

__all__ = ["EnvelopeBatch", "SourceRun", "StoredRow"]


@dataclass(frozen=True, slots=True)
class StoredRow:
    """One envelope as the forwarder hands it to the store (parsed once, kept as bytes)."""

    source: str
    sequence: int
    topic: str
    published_us: int
    envelope: bytes


@dataclass(frozen=True, slots=True)
class SourceRun:
    """What one batch holds of one source: its sequences (in arrival order) and the
    latest publishing time among them."""

    source: str
    sequences: list[int]
    latest_published_us: int


@dataclass(slots=True)
class EnvelopeBatch:
    """Parallel lists, one entry per envelope, in arrival order."""

    sources: list[str] = field(default_factory=list)
    sequences: list[int] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    published_us: list[int] = field(default_factory=list)
    envelopes: list[bytes] = field(default_factory=list)

    @classmethod
    def of(cls, rows: Iterable[StoredRow]) -> EnvelopeBatch:
        batch = cls()
        for r in rows:
            batch.append(r.source, r.sequence, r.topic, r.published_us, r.envelope)
        return batch

    def append(
        self, source: str, sequence: int, topic: str, published_us: int, envelope: bytes
    ) -> None:
        self.sources.append(source)
        self.sequences.append(sequence)
        self.topics.append(topic)
        self.published_us.append(published_us)
        self.envelopes.append(envelope)

    def __len__(self) -> int:
        return len(self.sources)

    def rows(self, *, stored_ms: int) -> Iterator[tuple[str, int, str, int, int, bytes]]:
        """The store's rows, built one at a time (the driver binds and drops each)."""
        return zip(
            self.sources,
            self.sequences,
            self.topics,
            self.published_us,
            itertools.repeat(stored_ms),
            self.envelopes,
        )

    def by_source(self) -> list[SourceRun]:
        """Per source, in order of first appearance."""
        if len(set(self.sources)) == 1:  # the usual batch: one publisher's burst
            return [SourceRun(self.sources[0], self.sequences, max(self.published_us))]
        grouped: dict[str, tuple[list[int], list[int]]] = {}
        columns = zip(self.sources, self.sequences, self.published_us, strict=True)
        for source, sequence, published in columns:
            entry = grouped.get(source)
            if entry is None:
                entry = grouped[source] = ([], [])
            entry[0].append(sequence)
            entry[1].append(published)
        return [SourceRun(s, seqs, max(pubs)) for s, (seqs, pubs) in grouped.items()]
