"""Ownership of lines: which metering instance polls which gateway.

A gateway is one RS-485 line with one master, so exactly one instance may poll it. Each
gateway has one lease row in the shared database, held by one instance until its TTL
runs out; each time the lease changes hands its **fencing token** grows by one (the row
is never deleted, so the token never goes back). Leases give liveness (a dead instance's
lines move on within the TTL); tokens give safety: a write carries the token it was
polled under, and the store refuses it, in the same transaction as the insert, once the
token is no longer the gateway's (:class:`~powerbus.nodes.metering.errors.StaleOwner`).
So an instance that was paused past its TTL (GC, a stopped VM) and wakes up believing it
still owns the line cannot store what it read.

Clocks: expiry compares the instances' clocks with each other, so they should be
NTP-synchronised to well under the TTL; a skewed clock can make a handover early or late
but never lets a stale owner's write in, because that check is the token's.

>>> from datetime import timedelta
>>> from powerbus.bus.kernel.database import create_engine
>>> from powerbus.nodes.metering.store import ReadingStore
>>> engine = create_engine("sqlite://")
>>> ReadingStore(engine).migrate()
>>> a = LineOwnership(engine, instance_id="a", ttl=timedelta(seconds=10))
>>> lease = a.acquire("gw-1")
>>> lease.owner, lease.token, a.acquire("gw-1").token  # acquiring again renews
('a', 1, 1)
>>> b = LineOwnership(engine, instance_id="b")
>>> b.acquire("gw-1") is None
True
>>> engine.dispose()
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from powerbus.bus.kernel.database import (
    chunked,
    conflict_insert,
    read_transaction,
    write_transaction,
)
from powerbus.bus.kernel.errors import InvalidArgument
from powerbus.nodes.metering.errors import StaleOwner
from powerbus.nodes.metering.store import Fence
from powerbus.nodes.metering.store._tables import instances, leases

__all__ = ["Lease", "LineOwnership"]

_NEVER = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class Lease:
    """A gateway held by ``owner`` under ``token`` until ``expires_at``."""

    gateway: str
    owner: str
    token: int
    expires_at: datetime

    @property
    def fence(self) -> Fence:
        """What a write made under this lease carries."""
        return Fence(self.gateway, self.token)


class LineOwnership:
    """One metering instance's view of the line leases in the shared database.

    Call :meth:`rebalance` every third of the TTL or so with the full list of gateways;
    it keeps this instance alive, renews what it holds, gives up what is over its fair
    share and takes free lines up to it. Poll exactly the gateways it returns.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        instance_id: str,
        ttl: timedelta = timedelta(seconds=15),
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not instance_id:
            raise InvalidArgument("instance_id", "empty")
        if ttl <= timedelta(0):
            raise InvalidArgument("ttl", f"must be positive, got {ttl}")
        self.engine = engine
        self.instance_id = instance_id
        self.ttl = ttl
        self._clock = clock or (lambda: datetime.now(timezone.utc))

    # -- one gateway --------------------------------------------------------------------

    def acquire(self, gateway: str) -> Lease | None:
        """Take ``gateway`` if it is free, expired or already ours (then renewed);
        None while another instance holds it."""
        with write_transaction(self.engine) as conn:
            row = self._locked_row(conn, gateway)
            # The clock is read holding the row lock, so a grant never seems to start
            # before the release or expiry it follows (PostgreSQL takes the lock here;
            # SQLite at BEGIN).
            now = self._clock()
            if row.owner == self.instance_id and row.expires_at > now:
                return self._extend(conn, gateway, row.token, now)
            if row.owner is not None and row.expires_at > now:
                return None
            # A new holding, even of a line we held before: our own stale pollers, if
            # any, must be fenced off too.
            token = row.token + 1
            conn.execute(
                sa.update(leases)
                .where(leases.c.gateway == gateway, leases.c.token == row.token)
                .values(
                    owner=self.instance_id, token=token, expires_at=now + self.ttl, acquired_at=now
                )
            )
            return Lease(gateway, self.instance_id, token, now + self.ttl)

    def renew(self, lease: Lease) -> Lease:
        """Extend a lease we still hold; :class:`StaleOwner` if it lapsed or moved on."""
        with write_transaction(self.engine) as conn:
            now = self._clock()
            done = conn.execute(
                sa.update(leases)
                .where(
                    leases.c.gateway == lease.gateway,
                    leases.c.owner == self.instance_id,
                    leases.c.token == lease.token,
                    leases.c.expires_at > now,
                )
                .values(expires_at=now + self.ttl)
            )
            if done.rowcount != 1:
                raise StaleOwner(lease.gateway, held=lease.token, current=self._token(conn, lease))
            return Lease(lease.gateway, self.instance_id, lease.token, now + self.ttl)

    def renew_all(self, held: Sequence[Lease]) -> list[Lease]:
        """:meth:`renew` every lease of ``held`` in one transaction; those that lapsed or
        moved on are left out. One commit, not one per line: an instance holding hundreds
        of lines renewed them one transaction each, and under load the last renewals came
        after the first leases had lapsed."""
        renewed: list[Lease] = []
        with write_transaction(self.engine) as conn:
            now = self._clock()
            until = now + self.ttl
            for chunk in chunked(held):
                conn.execute(
                    sa.update(leases)
                    .where(
                        sa.tuple_(leases.c.gateway, leases.c.token).in_(
                            [(lease.gateway, lease.token) for lease in chunk]
                        ),
                        leases.c.owner == self.instance_id,
                        leases.c.expires_at > now,
                    )
                    .values(expires_at=until)
                )
                still = set(
                    conn.execute(
                        sa.select(leases.c.gateway).where(
                            leases.c.gateway.in_([lease.gateway for lease in chunk]),
                            leases.c.owner == self.instance_id,
                            leases.c.expires_at == until,
                        )
                    ).scalars()
                )
                renewed += [
                    Lease(lease.gateway, self.instance_id, lease.token, until)
                    for lease in chunk
                    if lease.gateway in still
                ]
        return renewed

    def release(self, lease: Lease) -> bool:
        """Give a lease up now (drain, rebalancing); False if it was no longer ours."""
        with write_transaction(self.engine) as conn:
            done = conn.execute(
                sa.update(leases)
                .where(
                    leases.c.gateway == lease.gateway,
                    leases.c.owner == self.instance_id,
                    leases.c.token == lease.token,
                )
                .values(owner=None, expires_at=self._clock())
            )
            return bool(done.rowcount == 1)

    # -- all gateways -------------------------------------------------------------------

    def heartbeat(self) -> None:
        """Tell the other instances this one is alive (it counts in their fair share)."""
        now = self._clock()
        values = {"instance_id": self.instance_id, "expires_at": now + self.ttl}
        with write_transaction(self.engine) as conn:
            insert = conflict_insert(conn, instances).values(values)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["instance_id"], set_={"expires_at": values["expires_at"]}
                )
            )

    def live_instances(self) -> list[str]:
        """Instances whose heartbeat has not lapsed, sorted."""
        query = sa.select(instances.c.instance_id).where(instances.c.expires_at > self._clock())
        with read_transaction(self.engine) as conn:
            return sorted(conn.execute(query).scalars())

    def held(self) -> list[Lease]:
        """Leases this instance holds now, by gateway."""
        now = self._clock()
        c = leases.c
        query = (
            sa.select(c.gateway, c.token, c.expires_at)
            .where(c.owner == self.instance_id, c.expires_at > now)
            .order_by(c.gateway)
        )
        with read_transaction(self.engine) as conn:
            return [Lease(g, self.instance_id, t, e) for g, t, e in conn.execute(query)]

    def rebalance(self, gateways: Sequence[str]) -> list[Lease]:
        """Heartbeat, renew, shed what is over the fair share, take free lines up to it.

        The fair share is ``n // k`` lines of ``n`` among ``k`` live instances, one more
        for the first ``n % k`` of them by id, so the shares add up to ``n`` exactly: an
        instance alone takes every line, and a newcomer gets lines as the others shed
        theirs on their next round.
        """
        self.heartbeat()
        share = self._share(len(gateways))
        wanted = set(gateways)
        keep: list[Lease] = []
        for lease in self.held():
            if lease.gateway not in wanted or len(keep) >= share:
                self.release(lease)
            else:
                keep.append(lease)
        kept = self.renew_all(keep)
        owned = {lease.gateway for lease in kept}
        for gateway in self._free(sorted(wanted - owned)):
            if len(kept) >= share:
                break
            if (taken := self.acquire(gateway)) is not None:
                kept.append(taken)
        return sorted(kept, key=lambda lease: lease.gateway)

    def _share(self, count: int) -> int:
        live = self.live_instances()
        if self.instance_id not in live:  # our heartbeat lapsed already: count us anyway
            live = sorted([*live, self.instance_id])
        quotient, extra = divmod(count, len(live))
        return quotient + (1 if live.index(self.instance_id) < extra else 0)

    def leave(self) -> None:
        """Release every lease and drop out of the live set (clean shutdown)."""
        for lease in self.held():
            self.release(lease)
        with write_transaction(self.engine) as conn:
            conn.execute(sa.delete(instances).where(instances.c.instance_id == self.instance_id))

    # -- helpers ------------------------------------------------------------------------

    def _free(self, gateways: list[str]) -> list[str]:
        """Of ``gateways``, those nobody holds now (so acquire is worth a write)."""
        now = self._clock()
        c = leases.c
        held_query = sa.select(c.gateway).where(c.owner.is_not(None), c.expires_at > now)
        with read_transaction(self.engine) as conn:
            held = set(conn.execute(held_query).scalars())
        return [g for g in gateways if g not in held]

    def _locked_row(self, conn: Connection, gateway: str) -> Any:
        insert = conflict_insert(conn, leases).values(
            gateway=gateway, owner=None, token=0, expires_at=_NEVER, acquired_at=_NEVER
        )
        conn.execute(insert.on_conflict_do_nothing(index_elements=["gateway"]))
        query = sa.select(leases).where(leases.c.gateway == gateway)
        if self._pg:
            query = query.with_for_update()
        return conn.execute(query).one()

    def _extend(self, conn: Connection, gateway: str, token: int, now: datetime) -> Lease:
        conn.execute(
            sa.update(leases)
            .where(leases.c.gateway == gateway, leases.c.token == token)
            .values(expires_at=now + self.ttl)
        )
        return Lease(gateway, self.instance_id, token, now + self.ttl)

    def _token(self, conn: Connection, lease: Lease) -> int | None:
        query = sa.select(leases.c.token).where(leases.c.gateway == lease.gateway)
        token: int | None = conn.execute(query).scalar_one_or_none()
        return token

    @property
    def _pg(self) -> bool:
        return self.engine.dialect.name == "postgresql"
