"""The bus registry: nodes register, renew leases by heartbeat, and are watched.

State lives in the database only, so several bus instances can share one (PostgreSQL)
registry: each change bumps a revision in its own transaction, and every instance polls
"changes after my revision" each ``sweep_interval`` to update its :class:`Directory`.
Any instance's sweeper may mark lapsed leases down; the conditional UPDATE makes that
safe to race. An instance applies its own writes before answering, so a node that got
its lease is already routable through that instance.

A bus that stalls itself (SIGSTOP, a VM paused, a blocked event loop) took no heartbeats
meanwhile, through no fault of the nodes: when the sweeper finds it woke up late, it first
pushes every live lease later by the stall, as etcd renews leases after a leader stall,
instead of marking every node down at once.

A heartbeat is not a change: it renews the lease and stores the load, and ListNodes
(which reads the database) shows both, but the directory and Watch events carry the load
and lease expiry as of the node's last change. This keeps the change feed to membership
and health, instead of one event per node per heartbeat.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Concatenate, ParamSpec, TypeVar

import grpc
import sqlalchemy as sa
from google.protobuf import descriptor_pb2

from powerbus.bus.access.control import AccessControl
from powerbus.bus.kernel.addresses import parse_host_port
from powerbus.bus.kernel.database import create_engine
from powerbus.bus.kernel.errors import AlreadyExists, ConfigError, InvalidArgument, Unavailable
from powerbus.bus.kernel.lifecycle import Lifecycle
from powerbus.bus.kernel.nodes import Load, NodeRecord
from powerbus.bus.kernel.peers import PeerRateLimit, peer_host
from powerbus.bus.kernel.tls import TlsFiles
from powerbus.bus.registry import _admin
from powerbus.bus.registry._admission import NetworkRules
from powerbus.bus.registry._dbcheck import DatabaseCheck, reason_of
from powerbus.bus.registry._served_identity import check_served_identity
from powerbus.bus.registry._servicer import RegistryServicer
from powerbus.bus.registry._store import Store
from powerbus.bus.registry._takeover import prove_takeover
from powerbus.bus.registry._validation import Registration, check_registration
from powerbus.bus.registry._watch import Watch
from powerbus.bus.registry.directory import Directory
from powerbus.bus.registry.migrations import MIGRATIONS
from powerbus.registry.v1 import registry_pb2

__all__ = ["Registry"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# Pollers more than this far behind reload the whole table instead of reading the log.
CHANGE_LOG_RETENTION = timedelta(minutes=10)
_PRUNE_EVERY_S = 60.0
# SQLite's quick_check reads every page: cheap for a registry, not for every sweep.
_INTEGRITY_EVERY_S = 5.0
_WATCH_BACKLOG = 1024

Files = Sequence[descriptor_pb2.FileDescriptorProto]
SchemaGuard = Callable[[Registration, Files], None]
"""Checks a registration's descriptors against the accepted ones (those of the other live
nodes); raises a powerbus error naming what conflicts (``powerbus.bus.schema``)."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Registry(Lifecycle):
    """The node registry of one bus instance, on any SQLAlchemy database.

    >>> async def main() -> None:  # doctest: +SKIP
    ...     async with Registry(db_url="sqlite:///powerbus.db", lease_ttl=timedelta(seconds=10),
    ...                         sweep_interval=timedelta(milliseconds=500)) as registry:
    ...         registry_pb2_grpc.add_RegistryServicer_to_server(registry.servicer, server)
    ...         entry = registry.directory.service("powerbus.echo.v1.Echo")
    """

    def __init__(
        self,
        *,
        db_url: str,
        lease_ttl: timedelta,
        sweep_interval: timedelta,
        down_retention: timedelta = timedelta(hours=1),
        clock: Callable[[], datetime] = utc_now,
        watch_backlog: int = _WATCH_BACKLOG,
        networks: NetworkRules | None = None,
        register_rate: PeerRateLimit | None = None,
        schema_guard: SchemaGuard | None = None,
    ) -> None:
        for name, value in (
            ("lease_ttl", lease_ttl),
            ("sweep_interval", sweep_interval),
            ("down_retention", down_retention),
        ):
            if value <= timedelta(0):
                raise ConfigError(f"{name}: must be positive, got {value}")
        if watch_backlog < 1:
            raise ConfigError(f"watch_backlog: must be at least 1, got {watch_backlog}")
        self._db_url = db_url
        self._lease_ttl = lease_ttl
        self._sweep_interval = sweep_interval
        self._down_retention = down_retention
        self._clock = clock
        self._watch_backlog = watch_backlog
        self._networks = networks if networks is not None else NetworkRules.default()
        self._register_rate = register_rate
        self.schema_guard = schema_guard
        """Checks each registration's descriptors (the bus sets ``SchemaCheck.guard``)."""
        self.node_credentials: grpc.ChannelCredentials | None = None
        """How the registry dials a node to check a takeover; set when the bus runs TLS."""
        self.node_tls: TlsFiles | None = None
        """The bus's TLS files, when it runs TLS: a registration's address must then serve
        a certificate naming the node (``_served_identity``)."""
        self.access = AccessControl()
        """Who may act as which node and read the registry; the bus sets its own (tokens,
        rules). This default proves identities by certificate only and allows everything."""
        self._directory = Directory()
        self._servicer = RegistryServicer(self)
        self._engine: sa.Engine | None = None
        self._store: Store | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._start_lock = asyncio.Lock()
        self._sync_lock = asyncio.Lock()
        self._in_flight: set[asyncio.Future[Any]] = set()
        self._watches: set[Watch] = set()
        self._check = DatabaseCheck(db_url)
        self._problem: str | None = None
        self._damage: str | None = None
        self._last_integrity = 0.0
        self._last_prune = time.monotonic()

    @property
    def problem(self) -> str | None:
        """What is wrong with the database now (deleted, damaged, unreachable), or None;
        checked by the sweeper."""
        return self._problem

    @property
    def servicer(self) -> RegistryServicer:
        """The grpc.aio servicer of ``powerbus.registry.v1.Registry``."""
        return self._servicer

    @property
    def directory(self) -> Directory:
        return self._directory

    @property
    def engine(self) -> sa.Engine:
        """The registry database's engine while running; the policy store shares it."""
        if self._engine is None:
            raise Unavailable("the registry is not running")
        return self._engine

    async def start(self) -> None:
        """Create the engine, migrate, load the directory, start sweeping (no-op if running)."""
        async with self._start_lock:
            if self._engine is not None:
                return
            engine = create_engine(self._db_url)
            store = Store(engine)
            try:
                await asyncio.to_thread(_mapped, functools.partial(MIGRATIONS.run, engine))
                delta = await asyncio.to_thread(_mapped, functools.partial(store.read_since, -1))
            except Unavailable as exc:
                await asyncio.to_thread(engine.dispose)
                raise Unavailable(f"{self._check.where}: {exc.message}") from None
            except BaseException:
                await asyncio.to_thread(engine.dispose)
                raise
            self._check.opened()
            self._engine, self._store = engine, store
            self._directory._apply(delta)
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="registry-sweeper")

    async def stop(self) -> None:
        """Stop sweeping, end Watch streams, dispose of the engine (idempotent)."""
        engine, sweeper = self._engine, self._sweeper
        if engine is None:
            return
        self._engine = self._store = self._sweeper = None
        if sweeper is not None:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)
        self.end_watches()
        # Database calls already in threads finish before their connections go away.
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        await asyncio.to_thread(engine.dispose)

    def end_watches(self) -> None:
        """End every open Watch stream now (status OK); clients watch again elsewhere.

        For a bus that is shutting down: call it before ``server.stop(grace)``, which
        would otherwise wait out the grace period on streams that never end by themselves.
        """
        for watch in list(self._watches):
            watch.close()

    # The servicer's side. Arguments are checked by then, apart from registration, whose
    # descriptor set takes long enough to build that it goes to a thread too.

    async def _register(
        self, request: registry_pb2.RegisterRequest, *, peer: str = ""
    ) -> tuple[str, timedelta]:
        self._require_running()
        if self._register_rate is not None:
            self._register_rate.take(peer_host(peer))
        reg = await asyncio.to_thread(check_registration, request, default_ttl=self._lease_ttl)
        await self._networks.check(parse_host_port(reg.address, field="address").host)
        if self.schema_guard is not None:
            accepted = self._directory.file_descriptors(live_only=True, exclude=reg.node_id)
            await asyncio.to_thread(self.schema_guard, reg, accepted)
        if self.node_tls is not None:
            await check_served_identity(reg.node_id, reg.address, self.node_tls)
        replaces = await self._lease_to_replace(reg)
        lease_id, _expires = await self._db(Store.register, reg, self._clock(), replaces=replaces)
        await self._sync_after_write()
        return lease_id, reg.lease_ttl

    async def _lease_to_replace(self, reg: Registration) -> str | None:
        """The live lease on ``reg.node_id`` that ``reg`` may replace (None if there is
        none); raises if someone else holds it (see ``_takeover``)."""
        holder = await self._db(Store.holder, reg.node_id, self._clock())
        if holder is None:
            return None
        lease_id, address = holder
        if reg.lease_id and reg.lease_id == lease_id:
            return lease_id
        if not reg.instance_secret:
            raise AlreadyExists(
                "node_id",
                f"{reg.node_id!r} is held by the live instance at {address}; register again "
                "with its lease_id, or with an instance_secret proving you answer there now",
            )
        await prove_takeover(
            node_id=reg.node_id,
            holder_address=address,
            address=reg.address,
            secret=reg.instance_secret,
            credentials=self.node_credentials,
        )
        return lease_id

    async def _heartbeat(self, node_id: str, lease_id: str, load: Load) -> datetime:
        return await self._db(Store.heartbeat, node_id, lease_id, load, self._clock())

    async def _deregister(self, node_id: str, lease_id: str) -> None:
        await self._db(Store.deregister, node_id, lease_id, self._clock())
        await self._sync_after_write()

    async def admin(self, action: str, node_id: str = "", **options: int) -> object:
        """An operator's action (``disable``, ``enable``, ``weight``, ``deregister``,
        ``purge``; see ``_admin.py``), applied to the directory before returning."""
        engine, now = self.engine, self._clock()
        calls: dict[str, Callable[[], object]] = {
            "disable": functools.partial(
                _admin.set_rotation, engine, node_id, in_rotation=False, now=now
            ),
            "enable": functools.partial(
                _admin.set_rotation, engine, node_id, in_rotation=True, now=now
            ),
            "weight": functools.partial(
                _admin.set_weight, engine, node_id, options.get("weight", 0), now=now
            ),
            "deregister": functools.partial(_admin.mark_down, engine, node_id, now=now),
            "purge": functools.partial(_admin.purge_down, engine, now=now),
        }
        if action not in calls:
            raise InvalidArgument("action", f"unknown action {action!r}; one of {sorted(calls)}")
        result = await asyncio.to_thread(_mapped, calls[action])
        await self._sync_after_write()
        log.warning("operator action %s %s: %s", action, node_id or "(all down)", result)
        return result

    async def _list_nodes(self, *, service: str | None, include_down: bool) -> list[NodeRecord]:
        found = await self._db(Store.list_nodes)
        return sorted(
            (
                n
                for n in found
                if (include_down or n.live) and (service is None or service in n.services)
            ),
            key=lambda n: n.node_id,
        )

    def _watch(self, services: frozenset[str]) -> Watch:
        self._require_running()
        watch = Watch(
            self._directory, services, backlog=self._watch_backlog, on_close=self._watches.discard
        )
        self._watches.add(watch)
        return watch

    # Keeping the directory current.

    async def _sync(self) -> None:
        async with self._sync_lock:
            delta = await self._db(Store.read_since, self._directory.revision)
            self._directory._apply(delta)

    async def _sync_after_write(self) -> None:
        # The write is committed; failing the call now would only make the client retry
        # something that worked. The next sweep catches the directory up instead.
        try:
            await self._sync()
        except Unavailable as exc:
            log.warning("directory not refreshed after a write: %s", exc)

    async def _sweep_forever(self) -> None:
        interval = self._sweep_interval.total_seconds()
        stall = _StallMeter(interval)
        failing: str | None = None
        while True:
            await asyncio.sleep(interval)
            try:
                await self._sweep(stall)
            except Exception as exc:
                # Keep sweeping: the database may come back. Say so once, not every tick.
                if failing is None:
                    log.warning("registry sweep failed, will retry: %s", exc, exc_info=True)
                failing = str(exc)
            else:
                if failing is not None:
                    log.info("registry sweep works again")
                failing = None
            problem = await self._database_problem() or failing
            if problem != self._problem:
                log.log(
                    logging.ERROR if problem else logging.INFO,
                    "registry database: %s",
                    problem or "sound again",
                )
            self._problem = problem

    async def _sweep(self, stall: _StallMeter) -> None:
        stalled = stall.measure()
        if stalled is not None:
            extended = await self._db(Store.extend, stalled)
            log.warning(
                "the bus stalled for %.1f s; %d live lease(s) extended by as much",
                stalled.total_seconds(),
                extended,
            )
        now = self._clock()
        await self._db(Store.expire, now)
        prune = time.monotonic() - self._last_prune >= _PRUNE_EVERY_S
        log_before = now - CHANGE_LOG_RETENTION if prune else None
        down_before = now - self._down_retention
        await self._db(Store.purge, now, down_before=down_before, log_before=log_before)
        if prune:
            self._last_prune = time.monotonic()
        await self._sync()

    async def _database_problem(self) -> str | None:
        """The file's state every sweep; its integrity every few seconds (last answer kept)."""
        problem = self._check.file_problem()
        if problem is None and time.monotonic() - self._last_integrity >= _INTEGRITY_EVERY_S:
            self._last_integrity = time.monotonic()
            self._damage = await asyncio.to_thread(self._check.integrity_problem)
        return problem or self._damage

    def _require_running(self) -> Store:
        if self._store is None:
            raise Unavailable("the registry is not running")
        return self._store

    async def _db(
        self, method: Callable[Concatenate[Store, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run a Store method in a thread; it completes even if the caller is cancelled."""
        call = functools.partial(method, self._require_running(), *args, **kwargs)
        future = asyncio.ensure_future(asyncio.to_thread(_mapped, call))
        self._in_flight.add(future)
        future.add_done_callback(self._forget)
        return await asyncio.shield(future)

    def _forget(self, future: asyncio.Future[Any]) -> None:
        self._in_flight.discard(future)
        if not future.cancelled():
            future.exception()  # retrieved, so a call whose caller left is not reported


class _StallMeter:
    """How long the sweeper overslept: its event loop, or the whole process, stood still.

    Compares monotonic progress between ticks with the sleep asked for, and wall-clock
    progress with monotonic (a suspended machine stops the monotonic clock, not the wall
    clock). Below ``max(1 s, 2 x interval)`` it is scheduling noise, not a stall.

    >>> meter = _StallMeter(0.5, clocks=iter([(0.0, 0.0), (0.5, 0.5), (21.0, 21.0)]).__next__)
    >>> meter.measure() is None, meter.measure()
    (True, datetime.timedelta(seconds=20))
    """

    def __init__(
        self,
        interval: float,
        *,
        clocks: Callable[[], tuple[float, float]] = lambda: (time.monotonic(), time.time()),
    ) -> None:
        self._interval = interval
        self._clocks = clocks
        self._threshold = max(1.0, 2 * interval)
        self._last = clocks()

    def measure(self) -> timedelta | None:
        """The stall since the last tick, or None."""
        (mono, wall), (last_mono, last_wall) = self._clocks(), self._last
        self._last = (mono, wall)
        late = max(mono - last_mono, wall - last_wall) - self._interval
        return timedelta(seconds=late) if late >= self._threshold else None


def _mapped(call: Callable[[], T]) -> T:
    """Run ``call``, mapping database failures onto the powerbus error tree: one line,
    the driver's reason, never SQL (a corrupt file raises DatabaseError, not Operational)."""
    try:
        return call()
    except (sa.exc.DBAPIError, sa.exc.TimeoutError) as exc:
        raise Unavailable(f"the registry database is unavailable: {reason_of(exc)}") from exc
