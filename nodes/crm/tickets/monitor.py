"""The SLA monitor: a background loop that finds overdue deadlines and reports each once.

Reports go to a hook, :func:`log_overdue` by default; monitoring's alerts plug in there
(``CrmNode(overdue_hook=...)``) once the node can reach them.

>>> # async with SlaMonitor(tickets, interval=30.0) as monitor: ...
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from powerbus.bus.kernel.lifecycle import Lifecycle
from powerbus.crm.v1 import crm_pb2
from powerbus.nodes.crm.store.tickets import OverdueClock
from powerbus.nodes.crm.tickets.service import TicketService

__all__ = ["OverdueHook", "SlaMonitor", "log_overdue"]

log = logging.getLogger(__name__)

OverdueHook = Callable[[Sequence[OverdueClock]], None]
"""Called with the deadlines newly found overdue (never the same one twice)."""


def log_overdue(overdue: Sequence[OverdueClock]) -> None:
    """The default hook: one WARNING per breach, naming ticket, milestone and due time."""
    for clock in overdue:
        log.warning(
            "SLA breached: ticket %s (%s, %s) %s was due %s",
            clock.ticket_id,
            crm_pb2.TicketType.Name(clock.ticket_type),  # type: ignore[arg-type]
            crm_pb2.ServiceArea.Name(clock.area),  # type: ignore[arg-type]
            crm_pb2.SlaMilestone.Name(clock.milestone),  # type: ignore[arg-type]
            clock.due_at.isoformat(),
        )


class SlaMonitor(Lifecycle):
    """Checks every ``interval`` seconds; :meth:`check` runs one pass (tests call it)."""

    def __init__(
        self, tickets: TicketService, *, interval: float, hook: OverdueHook = log_overdue
    ) -> None:
        self.tickets = tickets
        self.interval = interval
        self.hook = hook
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="crm-sla-monitor")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def check(self) -> list[OverdueClock]:
        """Find deadlines overdue and not yet reported, report them, remember that."""
        found = await asyncio.to_thread(self.tickets.overdue, unalerted_only=True)
        if found:
            self.hook(found)
            await asyncio.to_thread(self.tickets.mark_alerted, found)
        return found

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:  # a database hiccup must not end the loop; next pass retries
                log.exception("SLA check failed")
            await asyncio.sleep(self.interval)
