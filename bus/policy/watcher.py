"""Keeping this bus instance's policies current: poll the store, apply, tell listeners.

Every bus instance on one database polls the policy revision every ``interval`` (one
primary-key read) and reads the changed rows when it moved, so a ``powerbus policy set``
made through any instance reaches all of them within about that interval. The instance
that wrote a change applies it before answering.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from powerbus.bus.kernel.errors import Unavailable
from powerbus.bus.kernel.lifecycle import Lifecycle
from powerbus.bus.policy.book import PolicyBook, PolicyDefaults, StoredPolicy
from powerbus.bus.policy.store import PolicyStore

__all__ = ["PolicyListener", "PolicyWatcher"]

log = logging.getLogger(__name__)

T = TypeVar("T")
PolicyListener = Callable[[set[str]], None]


class PolicyWatcher(Lifecycle):
    """Polls the policy store into a :class:`PolicyBook`.

    >>> # watcher = PolicyWatcher(engine=registry.engine, book=PolicyBook())
    >>> # async with watcher: watcher.add_listener(lambda services: ...)
    """

    def __init__(
        self,
        *,
        engine: Engine,
        book: PolicyBook,
        interval: timedelta = timedelta(seconds=1),
    ) -> None:
        self.book = book
        self._store = PolicyStore(engine)
        self._interval = interval.total_seconds()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._listeners: dict[int, PolicyListener] = {}
        self._next = 0
        self._seen = -1

    def add_listener(self, listener: PolicyListener) -> Callable[[], None]:
        """Call ``listener`` with the services whose policy changed ("*": all of them)."""
        token, self._next = self._next, self._next + 1
        self._listeners[token] = listener
        return lambda: self._listeners.pop(token, None) and None

    async def start(self) -> None:
        if self._task is None:
            await self.sync()
            self._task = asyncio.create_task(self._poll_forever(), name="policy-watcher")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def set(
        self,
        service: str,
        *,
        set_: Mapping[str, str],
        unset: tuple[str, ...] = (),
        reset: bool = False,
        by: str = "",
    ) -> StoredPolicy:
        """Store a change and apply it here at once."""
        write = functools.partial(
            self._store.write,
            service,
            set_=set_,
            unset=unset,
            reset=reset,
            by=by,
            now=datetime.now(timezone.utc),
        )
        stored = await _in_thread(write)
        await self.sync()
        return stored

    async def sync(self) -> None:
        """Read whatever changed since the last sync and apply it."""
        async with self._lock:
            revision = await _in_thread(self._store.revision)
            if revision == self._seen:
                return
            current, changes = await _in_thread(
                functools.partial(self._store.read_since, max(self._seen, 0))
            )
            self._seen = current
            changed = self.book.apply(changes)
        if changed:
            log.info("policy changed for %s", ", ".join(sorted(changed)))
            self._tell(changed)

    def replace_defaults(self, defaults: PolicyDefaults) -> None:
        """New defaults from a reloaded policy file, applied and told to the listeners."""
        self._tell(self.book.replace_defaults(defaults))

    def _tell(self, changed: builtins.set[str]) -> None:
        for listener in tuple(self._listeners.values()):
            try:
                listener(changed)
            except Exception:
                log.exception("policy listener %r failed", listener)

    async def _poll_forever(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.sync()
            except Exception as exc:
                if not failing:
                    log.warning("policy poll failed, will retry: %s", exc)
                failing = True
            else:
                failing = False


async def _in_thread(call: Callable[[], T]) -> T:
    try:
        return await asyncio.to_thread(call)
    except (sa.exc.DBAPIError, sa.exc.TimeoutError) as exc:
        # One line for the client: the driver's reason, never the SQL (a damaged file
        # raises DatabaseError, which is not an OperationalError).
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[:1]
        raise Unavailable(f"the registry database is unavailable: {''.join(reason)}") from exc
