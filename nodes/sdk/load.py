"""A node's load as its heartbeats report it.

>>> counter = LoadCounter()
>>> counter.begin(); counter.end(failed=True)
>>> load = counter.snapshot()
>>> (load.in_flight, load.requests_total, load.errors_total)
(0, 1, 1)
"""

from __future__ import annotations

import time

from powerbus.registry.v1 import registry_pb2

__all__ = ["LoadCounter"]


class LoadCounter:
    """In-flight calls, totals of calls and failed calls, and CPU use between snapshots.

    Fed by :class:`~powerbus.nodes.sdk.middleware.LoadMiddleware`, never by handlers.
    Only touched from the event loop's thread, so plain integers suffice.
    """

    def __init__(self) -> None:
        self.in_flight = 0
        self.requests_total = 0
        self.errors_total = 0
        self._cpu_mark = (time.monotonic(), time.process_time())

    def begin(self) -> None:
        self.in_flight += 1
        self.requests_total += 1

    def end(self, *, failed: bool) -> None:
        self.in_flight -= 1
        if failed:
            self.errors_total += 1

    def snapshot(self) -> registry_pb2.Load:
        """The load for a heartbeat; CPU is the share of one core used since the last one."""
        wall, cpu = time.monotonic(), time.process_time()
        last_wall, last_cpu = self._cpu_mark
        self._cpu_mark = (wall, cpu)
        elapsed = wall - last_wall
        return registry_pb2.Load(
            in_flight=self.in_flight,
            cpu=(cpu - last_cpu) / elapsed if elapsed > 0 else 0.0,
            requests_total=self.requests_total,
            errors_total=self.errors_total,
        )
