"""A batch of captured envelopes, column by column, as the forwarder's store thread fills
it and the store writes it.

Why columns rather than an object per envelope: that thread handles every envelope the
forwarder carries, and at a few hundred thousand a second an object per
envelope cost more than parsing it (building a frozen dataclass ~0.8 µs), and each one
kept alive counts towards the cyclic garbage collector's next run, which then walks the
bus's whole heap. Lists of str, int and bytes allocate nothing the collector tracks.

The store keeps a batch as runs (:meth:`EnvelopeBatch.runs`): consecutive envelopes of
one source and topic in one row, so its cost per envelope is a few bytes appended to a
blob instead of a row with its primary key and index entries. A run's blob is either
:func:`pack`'s (each envelope after its length) or, for a run that came as one frame, that
frame as it came (:mod:`powerbus.bus.kernel.event_runs`); the first byte tells them apart,
since a length of at most 4 MiB (the forwarder's frame bound) starts with a zero byte and
a protobuf message never does (no field is numbered 0).

>>> batch = EnvelopeBatch()
>>> for n in (1, 2, 4):
...     batch.append("billing-1", n, "billing.bill.issued", n, b"x")
>>> len(batch), [(r.first, r.last, unpack(r.blob)) for r in batch.runs()]
(3, [(1, 2, [b'x', b'x']), (4, 4, [b'x'])])
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from powerbus.bus.kernel.event_runs import split_frame

__all__ = [
    "MAX_RUN",
    "EnvelopeBatch",
    "Run",
    "StoredRow",
    "is_packed",
    "pack",
    "uncovered",
    "unpack",
]

MAX_RUN = 1_000
"""Envelopes in one stored run at most: a replay from inside a run reads the whole run."""

_LENGTH = 4  # bytes of big-endian length before each envelope in a run's blob


def pack(envelopes: Iterable[bytes | memoryview]) -> bytes:
    """A run's blob: each envelope after its length (4 bytes, big-endian)."""
    parts: list[bytes | memoryview] = []
    add = parts.append
    for envelope in envelopes:
        add(len(envelope).to_bytes(_LENGTH, "big"))
        add(envelope)
    return b"".join(parts)


def unpack(blob: bytes) -> list[bytes]:
    """The envelopes of a run's blob (either kind), in sequence order."""
    if not is_packed(blob):
        return split_frame(blob)
    out: list[bytes] = []
    view, at, end = memoryview(blob), 0, len(blob)
    while at < end:
        size = int.from_bytes(view[at : at + _LENGTH], "big")
        at += _LENGTH
        out.append(bytes(view[at : at + size]))
        at += size
    return out


def is_packed(blob: bytes) -> bool:
    """Whether ``blob`` is :func:`pack`'s rather than a run frame as it came."""
    return not blob or blob[0] == 0


@dataclass(frozen=True, slots=True)
class StoredRow:
    """One envelope as the forwarder hands it to the store (parsed once, kept as bytes)."""

    source: str
    sequence: int
    topic: str
    published_us: int
    envelope: bytes


@dataclass(frozen=True, slots=True)
class Run:
    """Envelopes ``first``..``last`` of one source and topic, consecutive, as one row."""

    source: str
    first: int
    last: int
    topic: str
    published_us: int
    """The latest publishing time among them."""
    blob: bytes
    """:func:`pack` of the envelopes in sequence order, or the run frame they came in."""

    def trimmed(self, first: int, last: int) -> Run:
        """The part ``first``..``last`` of this run (within it)."""
        if (first, last) == (self.first, self.last):
            return self
        envelopes = unpack(self.blob)[first - self.first : last - self.first + 1]
        return Run(self.source, first, last, self.topic, self.published_us, pack(envelopes))


def uncovered(run: Run, covered: Iterable[tuple[int, int]]) -> Iterator[Run]:
    """The parts of ``run`` outside the ranges ``covered`` (sorted, not overlapping)."""
    at = run.first
    for first, last in covered:
        if last < at or first > run.last:
            continue
        if first > at:
            yield run.trimmed(at, first - 1)
        at = max(at, last + 1)
        if at > run.last:
            return
    if at <= run.last:
        yield run.trimmed(at, run.last)


@dataclass(slots=True)
class EnvelopeBatch:
    """Parallel lists, one entry per envelope, in arrival order; and the runs that came
    whole (a message of several envelopes), which the capture keeps as it got them."""

    sources: list[str] = field(default_factory=list)
    sequences: list[int] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    published_us: list[int] = field(default_factory=list)
    envelopes: list[bytes] = field(default_factory=list)
    whole: list[Run] = field(default_factory=list)
    in_whole: int = 0
    """Envelopes in ``whole``."""

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

    def add_run(self, run: Run) -> None:
        """A run that came whole (one message of consecutive envelopes)."""
        self.whole.append(run)
        self.in_whole += run.last - run.first + 1

    def __len__(self) -> int:
        return len(self.sources) + self.in_whole

    def runs(self) -> list[Run]:
        """The batch as runs that do not overlap: per source (in order of first
        appearance), by sequence, a new run at every gap, change of topic or
        :data:`MAX_RUN` envelopes; an envelope in the batch twice is kept once (the one
        that came first)."""
        per_source: dict[str, list[Run]] = {}
        seqs = self.sequences
        for source, indexes in self._indexes_by_source().items():
            if any(seqs[a] >= seqs[b] for a, b in itertools.pairwise(indexes)):
                indexes = sorted(
                    {seqs[i]: i for i in reversed(indexes)}.values(), key=seqs.__getitem__
                )
            per_source[source] = list(self._runs_of(source, indexes))
        for run in self.whole:
            per_source.setdefault(run.source, []).append(run)
        if not self.whole:
            return [run for runs in per_source.values() for run in runs]
        return [run for runs in per_source.values() for run in _disjoint(runs)]

    def _indexes_by_source(self) -> Mapping[str, Sequence[int]]:
        if len(set(self.sources)) == 1:  # the usual batch: one publisher's burst
            return {self.sources[0]: range(len(self.sources))}
        grouped: dict[str, list[int]] = {}
        for i, source in enumerate(self.sources):
            grouped.setdefault(source, []).append(i)
        return grouped

    def _runs_of(self, source: str, indexes: Sequence[int]) -> Iterable[Run]:
        seqs, topics, stamps, envs = self.sequences, self.topics, self.published_us, self.envelopes
        start = 0
        for end in range(1, len(indexes) + 1):
            if (
                end < len(indexes)
                and seqs[indexes[end]] == seqs[indexes[end - 1]] + 1
                and topics[indexes[end]] == topics[indexes[start]]
                and end - start < MAX_RUN
            ):
                continue
            part = indexes[start:end]
            yield Run(
                source,
                seqs[part[0]],
                seqs[part[-1]],
                topics[part[0]],
                max(stamps[i] for i in part),
                pack(envs[i] for i in part),
            )
            start = end


def _disjoint(runs: list[Run]) -> Iterator[Run]:
    """One source's runs without overlaps (the earlier one in ``runs`` kept), in sequence
    order, neighbours of one topic joined up to :data:`MAX_RUN` where both are packed (a
    packed blob is the concatenation of its envelopes' packings, so joining copies no
    envelope apart; a run frame stays the row it came as)."""
    kept: list[Run] = []
    for run in runs:
        covered = sorted((r.first, r.last) for r in kept)
        kept.extend(uncovered(run, covered))
    kept.sort(key=lambda r: r.first)
    joined: Run | None = None
    for run in kept:
        if (
            joined is not None
            and run.first == joined.last + 1
            and run.topic == joined.topic
            and run.last - joined.first < MAX_RUN
            and is_packed(run.blob)
            and is_packed(joined.blob)
        ):
            joined = Run(
                run.source,
                joined.first,
                run.last,
                run.topic,
                max(run.published_us, joined.published_us),
                joined.blob + run.blob,
            )
            continue
        if joined is not None:
            yield joined
        joined = run
    if joined is not None:
        yield joined
