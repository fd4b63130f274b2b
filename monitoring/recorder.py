"""The traffic recorder: the :class:`CallObserver` the bus router reports every call to.

It keeps cumulative :class:`Tally` s of calls by (service, method, node, caller, code,
origin), counts of attempts by (service, node, code, origin) apart from them (a call
retried once is one call and two attempts), calls in flight, and which nodes the bus could
not reach on the last calls sent to them (a node that answers UNAVAILABLE itself was
reached). Everything else —
Prometheus, the live window, rollups, the topology's observed edges — reads from here.

The router calls it on every call, so the hot path is one tuple, one dictionary look-up
and a few additions; label folding happens once per new combination of raw values. It is
only touched on the event loop, so it takes no lock.

>>> r = TrafficRecorder()
>>> r.call_started("powerbus.echo.v1.Echo", "Echo", "echo-1")
>>> r.call_finished(CallRecord("powerbus.echo.v1.Echo", "Echo", "echo-1", "demo", "OK",
...                            0.002, 12, 30))
>>> [(k.caller, t.count) for k, t in r.tallies().items()]
[('demo', 1)]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from powerbus.bus.kernel.calls import CallOrigin, CallRecord
from powerbus.bus.kernel.masking import scrub
from powerbus.load_balancer import StatusCode
from powerbus.monitoring.labels import LabelLimit
from powerbus.monitoring.tally import Sample, Tally, TallyKey

__all__ = ["LabelLimits", "TrafficRecorder"]

# Raw (unfolded) keys are cached to skip folding; the cache is dropped when it grows past
# this, since raw callers (peer hosts) are not bounded even though folded ones are.
_RAW_CACHE_LIMIT = 20_000
# A node whose last calls all failed UNAVAILABLE is unreachable as traffic sees it, well
# before its lease lapses.
_UNREACHABLE_AFTER = 2


@dataclass(frozen=True, kw_only=True)
class LabelLimits:
    """How many distinct values each label may take before new ones count as ``other``."""

    callers: int = 50
    nodes: int = 500
    services: int = 200
    methods: int = 2000


RawKey = tuple[str, str, str, str, StatusCode, CallOrigin]


class TrafficRecorder:
    """Counts every call it is told about; see the module docstring."""

    def __init__(
        self,
        *,
        limits: LabelLimits = LabelLimits(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self._clock = clock
        self._services = LabelLimit("service", limit=limits.services)
        self._methods = LabelLimit("method", limit=limits.methods)
        self._nodes = LabelLimit("node", limit=limits.nodes)
        self._callers = LabelLimit("caller", limit=limits.callers)
        self._tallies: dict[TallyKey, Tally] = {}
        self._by_raw: dict[RawKey, Tally] = {}
        self._in_flight: dict[tuple[str, str, str], int] = {}
        self._failing: dict[str, tuple[int, float]] = {}
        self._attempts: dict[tuple[str, str, StatusCode, CallOrigin], int] = {}
        self._retried: dict[str, int] = {}
        self._samples: dict[TallyKey, Sample] = {}
        self.started_at = time.time()
        """Wall-clock time the counts start from."""

    # The CallObserver side (hot path).

    def call_started(self, service: str, method: str, node_id: str) -> None:
        key = (service, method, node_id)
        self._in_flight[key] = self._in_flight.get(key, 0) + 1

    def call_finished(self, record: CallRecord) -> None:
        attempt = (record.service, record.node_id, record.code, record.origin)
        self._attempts[attempt] = self._attempts.get(attempt, 0) + 1
        if record.origin is CallOrigin.ROUTED and record.node_id:
            key = (record.service, record.method, record.node_id)
            left = self._in_flight.get(key, 0) - 1
            self._in_flight[key] = left if left > 0 else 0
        if record.node_id:
            if not record.reached:
                self._unreached(record.node_id)
            elif self._failing:
                # The node answered, if only with an error: it is reachable.
                self._failing.pop(record.node_id, None)
        if not record.last:
            self._retried[record.service] = self._retried.get(record.service, 0) + 1
            return
        raw: RawKey = (
            record.service,
            record.method,
            record.node_id,
            record.caller,
            record.code,
            record.origin,
        )
        tally = self._by_raw.get(raw)
        if tally is None:
            tally = self._tally_for(raw)
        tally.add(record.latency_s, record.bytes_in, record.bytes_out)

    # Counts made elsewhere.

    def add(
        self,
        *,
        service: str,
        method: str,
        node_id: str,
        caller: str,
        code: StatusCode,
        origin: CallOrigin,
        sample: Sample,
    ) -> None:
        """Add calls counted by someone else (a proxyless client's or a gateway's report)."""
        if sample.count <= 0:
            return
        tally = self._by_raw.get((service, method, node_id, caller, code, origin))
        if tally is None:
            tally = self._tally_for((service, method, node_id, caller, code, origin))
        tally.merge(sample)

    def admit_history(self, key: TallyKey) -> None:
        """Let label values seen before a restart keep their names (not ``other``)."""
        self._services.admit(key.service)
        self._methods.admit(key.method)
        self._nodes.admit(key.node_id)
        self._callers.admit(key.caller)

    # Readers.

    def tallies(self) -> Mapping[TallyKey, Tally]:
        """Cumulative counts since the recorder started. Do not change them."""
        return self._tallies

    def attempts(self) -> dict[tuple[str, str, StatusCode, CallOrigin], int]:
        """Attempts by (service, node, code, origin), labels folded like the tallies'."""
        folded: dict[tuple[str, str, StatusCode, CallOrigin], int] = {}
        for (service, node_id, code, origin), n in list(self._attempts.items()):
            key = (
                self._services.fold(service),
                self._nodes.fold(node_id) if node_id else "",
                code,
                origin,
            )
            folded[key] = folded.get(key, 0) + n
        return folded

    def retries(self) -> dict[str, int]:
        """Attempts that were not their call's outcome (retried or out-hedged), by service."""
        folded: dict[str, int] = {}
        for service, n in list(self._retried.items()):
            key = self._services.fold(service)
            folded[key] = folded.get(key, 0) + n
        return folded

    def in_flight(self) -> dict[tuple[str, str, str], int]:
        """Routed calls in flight by (service, method, node); zeros are left out."""
        return {k: n for k, n in self._in_flight.items() if n > 0}

    def sample(self) -> dict[TallyKey, Sample]:
        """An immutable copy of every tally now (unchanged ones share last copy's samples)."""
        previous = self._samples
        current: dict[TallyKey, Sample] = {}
        for key, tally in self._tallies.items():
            old = previous.get(key)
            current[key] = old if old is not None and old.count == tally.count else tally.sample()
        self._samples = current
        # Calls in flight of nodes that went away would otherwise stay as zeros forever.
        if len(self._in_flight) > 4 * max(1, sum(1 for n in self._in_flight.values() if n)):
            self._in_flight = {k: n for k, n in self._in_flight.items() if n > 0}
        return current

    def unreachable(self, *, within_s: float = 30.0) -> dict[str, float]:
        """Nodes the bus could not reach on their last few calls (connection refused, no
        link), with when (monotonic) the latest failed; only failures within ``within_s``
        count. A node answering with an error, UNAVAILABLE included, is reachable."""
        now = self._clock()
        return {
            node: at
            for node, (n, at) in self._failing.items()
            if n >= _UNREACHABLE_AFTER and now - at <= within_s
        }

    def label_values(self, label: str) -> int:
        """How many distinct values ``label`` has taken (caller, node, service, method)."""
        return len(self._limit(label))

    def folded(self, label: str) -> int:
        """How many times a new value of ``label`` was counted as ``other``."""
        return self._limit(label).folded

    # Internals.

    def _limit(self, label: str) -> LabelLimit:
        return {
            "service": self._services,
            "method": self._methods,
            "node": self._nodes,
            "caller": self._callers,
        }[label]

    def _tally_for(self, raw: RawKey) -> Tally:
        service, method, node_id, caller, code, origin = raw
        key = TallyKey(
            self._services.fold(service),
            self._methods.fold(method),
            self._nodes.fold(node_id) if node_id else "",
            # Callers name themselves: one that quotes a phone ("app-13812341234") is shown
            # masked on the dashboard, in /metrics and in the stored rollups.
            self._callers.fold(scrub(caller)) if caller else "",
            code,
            origin,
        )
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = Tally()
        if len(self._by_raw) >= _RAW_CACHE_LIMIT:
            self._by_raw.clear()
        self._by_raw[raw] = tally
        return tally

    def _unreached(self, node_id: str) -> None:
        count = self._failing.get(node_id, (0, 0.0))[0]
        self._failing[node_id] = (count + 1, self._clock())
