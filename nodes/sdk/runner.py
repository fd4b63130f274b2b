"""Serving a node: one gRPC server per process, health, registration and a two-phase drain.

>>> async def main() -> None:
...     config = NodeConfig(id="echo-1", bus=HostPort("127.0.0.1", 50051))
...     async with NodeRunner(EchoNode(), config=config) as runner:
...         await runner.wait_registered()
...         print(runner.address)          # 127.0.0.1:40123 (port 0 picked a free port)
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib.metadata
import logging
import os
import socket
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped, unused-ignore]
from grpc_health.v1.health import aio as health_aio  # type: ignore[import-untyped, unused-ignore]

from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.errors import Unavailable
from powerbus.bus.kernel.lifecycle import Lifecycle
from powerbus.bus.kernel.statefile import write_state_file
from powerbus.bus.kernel.tls import TlsFiles, check_plaintext_listen
from powerbus.bus.kernel.tracing import start_tracing
from powerbus.bus.transport.limits import size_options
from powerbus.nodes.sdk.access import AccessGate, AccessMiddleware
from powerbus.nodes.sdk.channel import BusChannel
from powerbus.nodes.sdk.config import NodeConfig, read_token
from powerbus.nodes.sdk.link import LinkService
from powerbus.nodes.sdk.load import LoadCounter
from powerbus.nodes.sdk.middleware import (
    ErrorMiddleware,
    LoadMiddleware,
    Middleware,
    MiddlewareInterceptor,
    TracingMiddleware,
)
from powerbus.nodes.sdk.node import Node
from powerbus.nodes.sdk.registration import InstanceProof, Lease, Registration
from powerbus.nodes.sdk.services import file_descriptor_set
from powerbus.registry.v1 import registry_pb2, registry_pb2_grpc

if TYPE_CHECKING:
    from powerbus.bus.kernel.otel import Tracing

__all__ = ["NodeRunner", "bind_problem"]


def _powerbus_version() -> str:
    """The installed powerbus version; empty when running from an uninstalled tree."""
    try:
        return importlib.metadata.version("powerbus")
    except importlib.metadata.PackageNotFoundError:
        return ""


log = logging.getLogger(__name__)

# grpcio sets SO_REUSEPORT by default: a node started on a port already served (by the bus
# or another node) would share it and answer for the other process's services.
_SERVER_OPTIONS = (("grpc.so_reuseport", 0),)


def bind_problem(address: HostPort) -> str:
    """Why binding ``address`` fails, for an error message: grpc only says that it did.

    >>> bind_problem(HostPort("127.0.0.1", 0))
    'the address could not be bound'
    """
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((address.host, address.port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return f"address already in use (port {address.port})"
        return f"{exc.strerror or exc} (port {address.port})"
    return "the address could not be bound"


class NodeRunner(Lifecycle):
    """Runs one :class:`Node`: serves its services and ``grpc.health.v1`` on
    ``config.listen``, registers with ``config.bus`` (unless it is ``None``), heartbeats its
    load, and on :meth:`stop` drains: health NOT_SERVING, deregister, ``server.stop(grace)``.

    ``start()`` returns once the server is serving; registration proceeds in the background
    (the bus may not be up yet); :meth:`wait_registered` awaits it.
    """

    def __init__(self, node: Node, *, config: NodeConfig) -> None:
        self.node = node
        self.config = config
        self.load = LoadCounter()
        self._server: grpc.aio.Server | None = None
        self._health: health_aio.HealthServicer | None = None
        self._bus: BusChannel | None = None
        self._registration: Registration | None = None
        self._address: HostPort | None = None
        self._state_written = False
        self._running = False
        self._node_started = False
        self._link: LinkService | None = None
        self.tracing: Tracing | None = None
        """This node's spans, when an OTLP endpoint is configured (``config.otlp_endpoint``
        or ``OTEL_EXPORTER_OTLP_ENDPOINT``)."""
        # Per process, so a restarted node can prove to the bus it now holds the address.
        self._proof = InstanceProof(config.id)
        self._gate: AccessGate | None = None
        self._tls: TlsFiles | None = None

    @property
    def node_id(self) -> str:
        return self.config.id

    @property
    def address(self) -> HostPort:
        """The address the server actually listens on."""
        if self._address is None:
            raise RuntimeError(f"{self.node_id}: not started")
        return self._address

    @property
    def advertised(self) -> HostPort:
        """The address registered with the bus."""
        return self.config.advertised(self.address.port)

    @property
    def registration(self) -> Registration | None:
        """The registration task; ``None`` when standalone or not started."""
        return self._registration

    async def start(self) -> None:
        """Serve the node, then register in the background. Idempotent."""
        if self._running:
            return
        self._running = True
        if self.config.state_file is not None:
            # A stale file from an earlier run would announce a dead address.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.config.state_file)
        self.tracing = start_tracing(
            self.config.otlp_endpoint, service=self.node.kind, instance=self.node_id
        )
        cfg = self.config
        self._tls = TlsFiles.from_settings(cert=cfg.tls_cert, key=cfg.tls_key, ca=cfg.tls_ca)
        if self._tls is None:
            check_plaintext_listen("listen", cfg.listen.host, insecure=cfg.insecure)
        if self.config.bus is not None:
            self._bus = BusChannel(
                target=self.config.bus,
                caller=self.node_id,
                default_timeout=self.config.call_timeout.total_seconds(),
                tracing=self.tracing,
                credentials=self._tls.channel_credentials() if self._tls else None,
                token=read_token(cfg.token_file) if cfg.token_file else None,
            )
        self.node.attach(node_id=self.node_id, bus=self._bus)
        try:
            await self.node.on_start()
            self._node_started = True
            await self._serve()
        except BaseException:
            await self.stop()
            raise
        if self._bus is None:
            self._write_state_file()
            return
        self._registration = Registration(
            channel=self._bus.channel,
            request=self._register_request(),
            load=self.load.snapshot,
            rpc_timeout=self.config.call_timeout.total_seconds(),
            on_registered=self._on_registered,
        )
        await self._registration.start()

    async def _serve(self) -> None:
        # Tracing outermost: its span covers the whole call and sees its final status.
        traced = () if self.tracing is None else (TracingMiddleware(self.tracing),)
        # Under mTLS the node decides proxyless calls by the bus's rules, before they count.
        access: tuple[Middleware, ...] = ()
        if self._tls is not None and self._bus is not None:
            gate = self._gate = AccessGate(registry_pb2_grpc.RegistryStub(self._bus.channel))
            await gate.start()
            access = (AccessMiddleware(gate, node_id=self.node_id),)
        chain: tuple[Middleware, ...] = (
            *traced,
            *access,
            LoadMiddleware(self.load),
            ErrorMiddleware(),
            *self.node.middleware(),
        )
        server = self._server = grpc.aio.server(
            interceptors=[MiddlewareInterceptor(chain)],
            options=(*_SERVER_OPTIONS, *size_options(self.config.max_request_bytes)),
        )
        for service in self.node.served_services():
            service.add_to_server(self.node, server)
        # Unary calls from the bus may also come as frames on one connection (the node link).
        link = LinkService(
            self.node, middleware=chain, max_request_bytes=self.config.max_request_bytes
        )
        if link.methods:
            try:
                await link.start(
                    self.config.listen.host,
                    ssl=self._tls.server_context() if self._tls else None,
                )
            except OSError as exc:
                raise Unavailable(f"listen: cannot open the node link: {exc}") from None
            self._link = link
            server.add_generic_rpc_handlers((link.handler(),))
        registry_pb2_grpc.add_NodeInstanceServicer_to_server(self._proof, server)
        health = self._health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        try:
            if self._tls is None:
                port = server.add_insecure_port(str(self.config.listen))
            else:
                port = server.add_secure_port(
                    str(self.config.listen), self._tls.server_credentials()
                )
        except RuntimeError:  # grpc reports a failed bind this way, without the reason
            port = 0
        if port == 0:  # older grpc releases report a failed bind this way
            problem = bind_problem(self.config.listen)
            raise Unavailable(f"listen: cannot bind {self.config.listen}: {problem}")
        self._address = HostPort(self.config.listen.host, port)
        await server.start()
        for service in self.node.served_services():
            await health.set(service.name, health_pb2.HealthCheckResponse.SERVING)
        log.info("%s (%s) serving on %s", self.node_id, self.node.kind, self._address)

    def _register_request(self) -> registry_pb2.RegisterRequest:
        services = self.node.served_services()
        request = registry_pb2.RegisterRequest(
            node_id=self.node_id,
            kind=self.node.kind,
            address=str(self.advertised),
            services=[s.name for s in services],
            weight=self.config.weight,
            zone=self.config.zone,
            priority=self.config.priority.to_proto(),
            dependencies=[d.to_proto() for d in self.node.dependencies()],
            # The version operators see on the node page; a node's own metadata may override.
            metadata={"version": _powerbus_version(), **self.node.metadata()},
            file_descriptor_set=file_descriptor_set(s.descriptor for s in services),
            instance_secret=self._proof.secret,
        )
        if self.config.lease_ttl:
            request.lease_ttl.FromTimedelta(self.config.lease_ttl)
        return request

    def _on_registered(self, lease: Lease) -> None:
        self._write_state_file()

    def _write_state_file(self) -> None:
        if self.config.state_file is None or self._state_written:
            return
        write_state_file(
            self.config.state_file,
            {"grpc": str(self.address), "node_id": self.node_id, "kind": self.node.kind},
        )
        self._state_written = True

    async def wait_registered(self) -> Lease:
        """Wait until the bus granted a lease (bound it with ``asyncio.wait_for``)."""
        if self._registration is None:
            raise RuntimeError(f"{self.node_id}: not started, or standalone (no bus)")
        return await self._registration.wait_registered()

    async def stop(self) -> None:
        """Drain and stop: health NOT_SERVING, deregister, let calls in flight finish within
        ``config.drain_grace``, then release everything. Idempotent."""
        if not self._running:
            return
        self._running = False
        server, self._server = self._server, None
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        registration, self._registration = self._registration, None
        if registration is not None:
            registered = registration.lease is not None
            await registration.stop(deregister=True)
            if registered and self.config.deregister_delay:
                # Bus instances that have not polled the deregistration yet still send
                # calls here for a moment: serve them rather than refuse them.
                await asyncio.sleep(self.config.deregister_delay.total_seconds())
        if server is not None:
            grace = self.config.drain_grace.total_seconds()
            log.info("%s draining (grace %.1fs)", self.node_id, grace)
            if self._link is not None:
                await self._link.drain(grace)
            await server.stop(grace)
        link, self._link = self._link, None
        if link is not None:
            await link.close()  # already closed after a drain; not after a failed start
        gate, self._gate = self._gate, None
        if gate is not None:
            await gate.stop()
        try:
            if self._node_started:
                self._node_started = False
                await self.node.on_stop()
        finally:
            self.node.detach()
            bus, self._bus = self._bus, None
            if bus is not None:
                await bus.close()
            tracing, self.tracing = self.tracing, None
            if tracing is not None:
                await asyncio.to_thread(tracing.shutdown)  # sends what is buffered, bounded
        log.info("%s stopped", self.node_id)
