"""The bus process: registry, router, health and reflection on one gRPC port; HTTP beside it.

Start-up order matters: the registry is loaded before the gRPC port opens, so the first
call routed already sees every live node; the state file is written last, once both
ports serve. Stopping is two-phase: health goes NOT_SERVING, then the server stops with
a grace period for calls in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

import grpc
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from powerbus.bus.access.control import AccessControl
from powerbus.bus.access.http_routes import audit_routes
from powerbus.bus.access.store import AccessStore
from powerbus.bus.access_log import AccessLog
from powerbus.bus.config import BusConfig
from powerbus.bus.events import EventBus, EventBusConfig
from powerbus.bus.events.metrics import EventsCollector
from powerbus.bus.events.quality_feed import GatewayQualityFeed
from powerbus.bus.events.status import BusEvents
from powerbus.bus.health import BusHealth
from powerbus.bus.http_api import create_http_app
from powerbus.bus.http_auth import Authenticator, HttpAuthMode, UserStore
from powerbus.bus.http_deadlines import HttpLimits
from powerbus.bus.http_server import HttpServer
from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.descriptors import descriptor_set_for
from powerbus.bus.kernel.errors import PowerbusError, Unavailable
from powerbus.bus.kernel.lifecycle import Lifecycle
from powerbus.bus.kernel.peers import PeerRateLimit
from powerbus.bus.kernel.statefile import write_state_file
from powerbus.bus.kernel.tls import (
    TlsFiles,
    check_plaintext_listen,
    check_unguarded_listen,
    is_loopback,
)
from powerbus.bus.kernel.tracing import start_tracing
from powerbus.bus.policy import (
    PoliciesServicer,
    PolicyBook,
    PolicyDefaults,
    PolicyWatcher,
    load_policy_defaults,
)
from powerbus.bus.reflection import SchemaReflection, reflection_v1_file
from powerbus.bus.registry import DirectoryChange, NetworkRules, Registry
from powerbus.bus.router import Balancers, Router
from powerbus.bus.router.in_flight import BytesInFlight
from powerbus.bus.router.status import balancer_routes
from powerbus.bus.schema import SchemaCheck, SchemaRegistry
from powerbus.bus.transport.limits import size_options
from powerbus.bus.transport.pool import UpstreamPool
from powerbus.bus.transport.probes import HealthProber
from powerbus.events.v1 import events_pb2
from powerbus.monitoring import AlertRule, CallObserver, Monitoring, MonitoringConfig
from powerbus.nodes.sdk.events import Outbox, Publisher, open_event_tables
from powerbus.nodes.sdk.runner import bind_problem
from powerbus.policy.v1 import policy_pb2, policy_pb2_grpc
from powerbus.registry.v1 import registry_pb2, registry_pb2_grpc
from powerbus.traffic.v1 import traffic_pb2, traffic_pb2_grpc

if TYPE_CHECKING:
    from powerbus.bus.kernel.otel import Tracing

__all__ = ["BusServer", "Reloaded"]

log = logging.getLogger(__name__)

_SERVER_OPTIONS = (
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    # grpcio sets SO_REUSEPORT by default: a second bus on this port would then start and
    # share it, answering half the calls from an empty registry.
    ("grpc.so_reuseport", 0),
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Reloaded:
    """What SIGHUP re-reads from the config files: alert rules and policy defaults."""

    rules: tuple[AlertRule, ...]
    policy: PolicyDefaults | None = None


class BusServer(Lifecycle):
    """One bus instance.

    >>> # async with BusServer(config=resolve(BusConfig, flags={"grpc": "127.0.0.1:0"})) as bus:
    >>> #     print(bus.grpc_address)
    """

    def __init__(
        self,
        *,
        config: BusConfig,
        observer: CallObserver | None = None,
        monitoring: MonitoringConfig | None = None,
        reload: Callable[[], Reloaded] | None = None,
    ) -> None:
        self.config = config
        # SIGHUP re-reads the config files through this (alert rules, policy defaults);
        # a file that no longer holds is logged and the running configuration kept.
        self._reload = reload
        self._reloading: set[asyncio.Task[bool]] = set()
        self.registry = Registry(
            db_url=config.db,
            lease_ttl=config.lease_ttl,
            sweep_interval=config.sweep_interval,
            networks=NetworkRules.parse(
                config.allowed_networks.split(","), config.denied_networks.split(",")
            ),
            register_rate=PeerRateLimit(
                "registrations", rate=config.register_rate, burst=config.register_burst
            ),
        )
        self.monitoring = Monitoring(
            config=monitoring or MonitoringConfig(),
            db_url=config.db,
            directory=self.registry.directory,
            lease_ttl=config.lease_ttl,
        )
        self.events = EventBus(
            config=EventBusConfig(
                db=config.db,
                events_in=config.events_in,
                events_out=config.events_out,
                retention=config.event_retention,
            )
        )
        self.monitoring.registry.register(EventsCollector(self.events))
        self.monitoring.watch_events(self.events.edges)
        self.monitoring.watch_gateway_quality(
            GatewayQualityFeed(lambda: self.events.store, since_s=self.monitoring.quality.keep_s)
        )
        self.events.watch_alerts(self.monitoring.alerts.active)
        # An observer given here replaces the recorder on the routed path (tests, benchmarks).
        self._observer = observer if observer is not None else self.monitoring.observer
        if config.access_log:
            self._observer = AccessLog(self._observer)
        self.schema = SchemaRegistry()
        served_here = (
            registry_pb2.DESCRIPTOR,
            health_pb2.DESCRIPTOR,
            reflection_pb2.DESCRIPTOR,
            traffic_pb2.DESCRIPTOR,
            policy_pb2.DESCRIPTOR,
            events_pb2.DESCRIPTOR,
        )
        self._own_files: list[descriptor_pb2.FileDescriptorProto] = list(
            descriptor_set_for(*served_here).file
        )
        v1 = reflection_v1_file()
        self._own_files.append(v1)
        # Only the files' own services: their imports (events.proto imports every domain's
        # messages) declare services that nodes serve, or nobody does.
        # (NodeInstance is in registry.proto, but every node serves it, not the bus.)
        node_instance = registry_pb2.DESCRIPTOR.services_by_name["NodeInstance"].full_name
        reserved = [
            *(s.full_name for f in served_here for s in f.services_by_name.values()),
            *(f"{v1.package}.{s.name}" for s in v1.service),
        ]
        self._own_services = [s for s in reserved if s != node_instance]
        # Files defining the bus's own services come before any node's, and no node may
        # register those services, redefine them or conflict with the accepted schema.
        core = {*(f.name for f in served_here), v1.name}
        self._core_files = [f for f in self._own_files if f.name in core]
        self.registry.schema_guard = SchemaCheck(self._core_files, reserved).guard
        self._upstreams = UpstreamPool()
        # With TLS the bus dials nodes with its own certificate too (they may require mTLS).
        self._tls = TlsFiles.from_settings(
            cert=config.tls_cert, key=config.tls_key, ca=config.tls_ca
        )
        self._upstreams = UpstreamPool(tls=self._tls)
        if self._tls is not None:
            self.registry.node_credentials = self._tls.channel_credentials()
            self.registry.node_tls = self._tls
        # Load balancing and fault tolerance per service: defaults from the policy file,
        # overrides from the registry database (powerbus policy set).
        self.policies = PolicyBook(
            load_policy_defaults(config.policy_file) if config.policy_file else None
        )
        self._policy_watcher: PolicyWatcher | None = None
        self._policies_servicer: PoliciesServicer | None = None
        self._prober: HealthProber | None = None
        self._balancers: Balancers | None = None
        self._router: Router | None = None
        self._health: BusHealth | None = None
        self._server: grpc.aio.Server | None = None
        self._http: HttpServer | None = None
        self._unsubscribe: Callable[[], None] = lambda: None
        self._unsubscribe_status: Callable[[], None] = lambda: None
        self.publisher: Publisher | None = None
        self.access: AccessControl | None = None
        """Identities, rules and the audit record, once started."""
        self._bus_events: BusEvents | None = None
        self.grpc_address: HostPort = config.grpc
        self.tracing: Tracing | None = None
        """Spans of routed calls, when an OTLP endpoint is configured."""

    @property
    def http_address(self) -> HostPort:
        return self._http.address if self._http else self.config.http

    async def start(self) -> None:
        # Checked before anything starts: a refused plaintext listen leaves nothing behind.
        cfg = self.config
        if self._tls is None:
            check_plaintext_listen("grpc", cfg.grpc.host, insecure=cfg.insecure)
        check_unguarded_listen(
            "grpc", cfg.grpc.host, access_control=cfg.access_control, insecure=cfg.insecure
        )
        await self.registry.start()
        # Tokens, rules and the audit record live beside the registry, in its database.
        access = self.access = AccessControl(
            AccessStore(self.registry.engine),
            enabled=self.config.access_control,
            refresh=max(1.0, self.config.sweep_interval.total_seconds()),
        )
        await access.start()
        self.registry.access = access
        self.monitoring.reports.admit = access.admit_reporter
        await self.monitoring.start()
        await self.events.start()
        directory = self.registry.directory
        watcher = self._policy_watcher = PolicyWatcher(
            engine=self.registry.engine, book=self.policies, interval=self.config.sweep_interval
        )
        await watcher.start()
        self._policies_servicer = PoliciesServicer(
            watcher, access=access, audit=access.store.audit if access.store else None
        )
        balancers = self._balancers = Balancers(
            directory, policies=self.policies, local_zone=self.config.zone
        )
        balancers.on_addresses = self._upstreams.retain
        watcher.add_listener(balancers.policies_changed)
        self._prober = HealthProber(
            balancers=lambda: [lane.balancer for lane in balancers.lanes()],
            channel_for=self._upstreams.channel,
        )
        balancers.on_members = self._prober.reconcile
        self.monitoring.watch_balancers(
            lambda: [lane.balancer.snapshot() for lane in balancers.lanes()]
        )
        balancers.start()
        await self._prober.start()
        self.tracing = start_tracing(
            self.config.otlp_endpoint, service="powerbus-bus", instance=str(self.config.grpc)
        )
        self._router = Router(
            schema=self.schema,
            balancers=self._balancers,
            upstreams=self._upstreams,
            observer=self._observer,
            tracing=self.tracing,
            in_flight=BytesInFlight(self.config.max_bytes_in_flight),
            access=access,
        )
        self._health = BusHealth(directory)
        self._rebuild_schema()
        self._unsubscribe = directory.add_listener(self._on_change)

        # Bodies over max_request_bytes are refused from their length prefix, unbuffered.
        options = (*_SERVER_OPTIONS, *size_options(self.config.max_request_bytes))
        server = self._server = grpc.aio.server(options=options)
        registry_pb2_grpc.add_RegistryServicer_to_server(self.registry.servicer, server)
        traffic_pb2_grpc.add_TrafficReportsServicer_to_server(self.monitoring.reports, server)
        policy_pb2_grpc.add_PoliciesServicer_to_server(self._policies_servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health.servicer, server)
        reflection = SchemaReflection(self.schema, served=self._served)
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(reflection, server)
        assert self.events.replay is not None
        # Before the router: the router's generic handler would claim any method path.
        server.add_generic_rpc_handlers(
            (reflection.v1_handler(), self.events.replay.rpc_handler(), self._router)
        )
        try:
            port = self._add_port(server)
        except RuntimeError:  # grpc's way of saying the bind failed; it does not say why
            raise Unavailable(
                f"grpc: cannot listen on {self.config.grpc}: {bind_problem(self.config.grpc)}"
            ) from None
        self.grpc_address = HostPort(self.config.grpc.host, port)
        await server.start()
        await self._health.serving()
        await self._start_publisher()

        settings = self.config.http_auth_settings
        audit = access.store.audit if access.store else None
        users = UserStore(self.registry.engine, audit=audit)
        await asyncio.to_thread(users.migrate)
        auth = Authenticator(users, cache_ttl=settings.cache_ttl)
        await self._warn_if_open(auth)
        self._http = HttpServer(
            create_http_app(
                directory,
                routes=[
                    *self.monitoring.routes(),
                    *balancer_routes(balancers),
                    *self.events.routes(),
                    *(audit_routes(access.store.audit) if access.store else ()),
                ],
                problems=self._problems,
                admin=self.registry.admin,
                in_flight=self._in_flight_of,
                list_nodes=self.registry._list_nodes,  # fresh heartbeats, as ListNodes reads them
                auth=auth,
                auth_settings=settings,
                audit=audit,
            ),
            self.config.http,
            HttpLimits(
                head_timeout=self.config.http_head_timeout.total_seconds(),
                body_timeout=self.config.http_body_timeout.total_seconds(),
                max_connections=self.config.http_max_connections,
            ),
            trusted_proxies=[
                p.strip() for p in self.config.http_trusted_proxies.split(",") if p.strip()
            ],
        )
        await self._http.start()
        self.monitoring.external_url = f"http://{self.http_address}/"
        if self.config.state_file:
            write_state_file(
                self.config.state_file,
                {
                    "grpc": str(self.grpc_address),
                    "http": str(self.http_address),
                    "events_in": str(self.events.events_in),
                    "events_out": str(self.events.events_out),
                    "pid": os.getpid(),
                },
            )
        if self._reload is not None:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._on_sighup)
        log.info(
            "bus serving gRPC on %s, HTTP on %s, events in %s out %s",
            self.grpc_address,
            self.http_address,
            self.events.events_in,
            self.events.events_out,
        )

    async def _warn_if_open(self, auth: Authenticator) -> None:
        """Say at start how the HTTP port lets people in, when it is not by login."""
        if await auth.anyone():
            return
        if self.config.http_auth is HttpAuthMode.REQUIRED:
            log.warning(
                "http_auth is required but no HTTP user exists: nobody can log in to the "
                "dashboard until one is added (powerbus users add NAME --role admin)"
            )
        else:
            # Only worth a warning when people beyond this machine can reach the port.
            level = logging.INFO if is_loopback(self.config.http.host) else logging.WARNING
            log.log(
                level,
                "no HTTP user exists: the dashboard and /api are open to callers on this "
                "machine only, without a login (powerbus users add NAME --role admin)",
            )

    def _add_port(self, server: grpc.aio.Server) -> int:
        """The gRPC port: TLS (mTLS with a CA) from the files, else plaintext on loopback."""
        address = str(self.config.grpc)
        if self._tls is None:
            return server.add_insecure_port(address)
        return server.add_secure_port(address, self._tls.server_credentials())

    def _on_sighup(self) -> None:
        task = asyncio.create_task(self.reload(), name="config reload")
        self._reloading.add(task)
        task.add_done_callback(self._reloading.discard)

    async def reload(self) -> bool:
        """Re-read the config files (what SIGHUP does); whether they held."""
        if self._reload is None or self._policy_watcher is None:
            return False
        try:
            fresh = await asyncio.to_thread(self._reload)
        except PowerbusError as exc:
            log.error("configuration not reloaded, the running one stays: %s", exc)
            return False
        self.monitoring.replace_rules(fresh.rules)
        if fresh.policy is not None:
            self._policy_watcher.replace_defaults(fresh.policy)
        log.info("configuration reloaded: %d alert rule(s)", len(fresh.rules))
        return True

    async def stop(self) -> None:
        """Stop serving; idempotent. Calls in flight get ``drain_grace`` to finish."""
        server, self._server = self._server, None
        if self._reload is not None:
            with contextlib.suppress(RuntimeError):  # no loop or no handler: nothing to undo
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        for task in list(self._reloading):
            task.cancel()
        await asyncio.gather(*self._reloading, return_exceptions=True)
        if server is not None:
            if self._health is not None:
                await self._health.shutting_down()
            # Watch streams never end by themselves; they would hold the grace period.
            self.registry.end_watches()
            if self._policies_servicer is not None:
                self._policies_servicer.close_streams()
            await server.stop(self.config.drain_grace.total_seconds())
        http, self._http = self._http, None
        if http is not None:
            self.monitoring.close_streams()  # live streams would hold the HTTP server open
            await http.stop()
        self._unsubscribe()
        self._unsubscribe_status()
        if self._bus_events is not None:
            await self._bus_events.stop()
        if self.publisher is not None:
            await self.publisher.stop()
        if self._health is not None:
            await self._health.close()
        if self._prober is not None:
            await self._prober.stop()
        if self._balancers is not None:
            self._balancers.stop()
        if self._policy_watcher is not None:
            await self._policy_watcher.stop()
        await self._upstreams.close()
        await self.events.stop()
        await self.monitoring.stop()
        if self.access is not None:
            await self.access.stop()
        await self.registry.stop()
        tracing, self.tracing = self.tracing, None
        if tracing is not None:
            await asyncio.to_thread(tracing.shutdown)  # sends what is buffered, bounded

    def _served(self) -> list[str]:
        """The services reflection lists: the bus's own and those a node serves."""
        return [*self._own_services, *self.registry.directory.services()]

    def _in_flight_of(self, node_id: str) -> int:
        return sum(
            n
            for (_s, _m, node), n in self.monitoring.recorder.in_flight().items()
            if node == node_id
        )

    def _problems(self) -> list[str]:
        """What makes ``/healthz`` red."""
        problem = self.registry.problem
        return [f"registry database: {problem}"] if problem else []

    async def _start_publisher(self) -> None:
        """The bus's own publisher (node status changes, alerts), relayed through its own
        forwarder; its outbox lives in the registry's database."""
        engine = self.registry.engine
        await asyncio.to_thread(open_event_tables, engine)
        source = f"bus@{self.grpc_address}"
        self.publisher = Publisher(
            source=source,
            outbox=Outbox(engine, source=source),
            bus=str(self.grpc_address.dialled_locally()),
            events_in=[str(self.events.events_in)],
            credentials=self._tls.channel_credentials() if self._tls else None,
        )
        await self.publisher.start()
        bus_events = self._bus_events = BusEvents(self.publisher)
        bus_events.start()
        self._unsubscribe_status = self.registry.directory.add_listener(bus_events.on_change)
        # The alert book has no way to remove a listener; it lives as long as this bus.
        self.monitoring.alerts.add_listener(bus_events.on_alert)

    def _on_change(self, change: DirectoryChange) -> None:
        self._rebuild_schema()
        if self._health is not None:
            self._health.schedule_refresh()

    def _rebuild_schema(self) -> None:
        files = [
            *self._core_files,
            *self.registry.directory.file_descriptors(),
            *self._own_files,  # imports of the core files, when no node registers newer
        ]
        if self.schema.rebuild(files) and self._router is not None:
            self._router.schema_changed()
