"""Who sent a request: the store's answers, asked from a worker thread and kept briefly.

The dashboard asks for ``/api/overview`` and friends every second or so; each would be a
database read. A checked session or token is trusted for ``cache_ttl`` (2 s), a logout
here forgets it at once, and a removed user elsewhere is out within the same 2 s.

>>> import asyncio
>>> from powerbus.bus.kernel.database import create_engine
>>> store = UserStore(create_engine("sqlite://"))
>>> store.migrate()
>>> auth = Authenticator(store)
>>> asyncio.run(auth.anyone())
False
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta

from powerbus.bus.http_auth.passwords import digest_secret
from powerbus.bus.http_auth.store import Principal, UserStore

__all__ = ["Authenticator"]

_MAX_CACHED = 10_000


class _TtlCache:
    """Answers by key for ``ttl`` seconds, at most ``_MAX_CACHED`` of them (oldest out)."""

    def __init__(self, ttl: float, clock: Callable[[], float]) -> None:
        self._ttl, self._clock = ttl, clock
        self._items: OrderedDict[str, tuple[float, Principal | None]] = OrderedDict()

    def get(self, key: str) -> tuple[bool, Principal | None]:
        found = self._items.get(key)
        if found is None or found[0] < self._clock():
            return False, None
        return True, found[1]

    def put(self, key: str, value: Principal | None) -> None:
        self._items.pop(key, None)
        self._items[key] = (self._clock() + self._ttl, value)
        while len(self._items) > _MAX_CACHED:
            self._items.popitem(last=False)

    def forget(self, key: str) -> None:
        self._items.pop(key, None)


class Authenticator:
    """The async face of a :class:`UserStore` for the HTTP gate."""

    def __init__(
        self,
        store: UserStore,
        *,
        cache_ttl: timedelta = timedelta(seconds=2),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._clock = clock
        self._ttl = cache_ttl.total_seconds()
        self._cache = _TtlCache(self._ttl, clock)
        self._users_known: tuple[float, bool] = (float("-inf"), False)

    async def anyone(self) -> bool:
        """Whether any user exists (asked again every ``cache_ttl``)."""
        checked, known = self._users_known
        if self._clock() - checked < self._ttl:
            return known
        known = await asyncio.to_thread(self.store.count) > 0
        self._users_known = (self._clock(), known)
        return known

    async def by_token(self, token: str) -> Principal | None:
        return await self._cached("t:" + digest_secret(token), self.store.by_token, token)

    async def by_session(self, session_id: str) -> Principal | None:
        return await self._cached(
            "s:" + digest_secret(session_id), self.store.by_session, session_id
        )

    async def login(self, name: str, password: str) -> Principal | None:
        return await asyncio.to_thread(self.store.login, name, password)

    async def start_session(self, name: str, *, ttl: timedelta) -> str:
        return await asyncio.to_thread(self.store.start_session, name, ttl=ttl)

    async def end_session(self, session_id: str) -> None:
        self._cache.forget("s:" + digest_secret(session_id))
        await asyncio.to_thread(self.store.end_session, session_id)

    def forget_users(self) -> None:
        """Drop every cached answer: a user was changed through this bus."""
        self._cache = _TtlCache(self._ttl, self._clock)
        self._users_known = (float("-inf"), False)

    async def _cached(
        self, key: str, ask: Callable[[str], Principal | None], secret: str
    ) -> Principal | None:
        hit, principal = self._cache.get(key)
        if not hit:
            principal = await asyncio.to_thread(ask, secret)
            self._cache.put(key, principal)
        return principal
