"""The CORBA gateway node: the bus's CORBA face, served over IIOP.

It serves every interface of the IDL generated from the installed protos (the text of
``idl/powerbus.idl``) and forwards each operation to the bus as the matching gRPC call
(see :mod:`.bridge`). It registers with the bus like any node, serving no gRPC service
of its own, and declares every bridged service as an optional dependency.

::

    powerbus node corba-gateway --bus 127.0.0.1:50051 --id corba-1 \\
        --ior-file iors.json --naming corbaloc::127.0.0.1:2809/NameService
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Mapping
from typing import Any

import grpc

from powerbus.adapters.corba.codec import IdlCodec
from powerbus.adapters.corba.ior import repository_id, write_ior_file
from powerbus.adapters.corba.naming import NamingService
from powerbus.adapters.corba.orb import Orb, OrbConfig
from powerbus.adapters.corba.schema import CorbaSchema, Interface, installed_services
from powerbus.bus.kernel.errors import ConfigError, PowerbusError
from powerbus.nodes.corba_gateway.bridge import OperationBridge, servant_class
from powerbus.nodes.corba_gateway.config import GatewaySettings
from powerbus.nodes.sdk.config import NodeConfig
from powerbus.nodes.sdk.node import BusClient, ConfiguredNode
from powerbus.nodes.sdk.traffic import TrafficReporter
from powerbus.traffic.v1 import traffic_pb2

__all__ = ["BUS_SERVICES", "CorbaGatewayNode"]

log = logging.getLogger(__name__)

BUS_SERVICES = ("powerbus.registry.v1.", "powerbus.traffic.v1.", "powerbus.policy.v1.")
"""Services the bus serves itself: bridged, but not declared as dependencies."""


class CorbaGatewayNode(ConfiguredNode[GatewaySettings]):
    """``powerbus node corba-gateway``: IIOP in, gRPC through the bus out.

    >>> CorbaGatewayNode.served_services()
    ()
    """

    kind = "corba-gateway"
    settings_type = GatewaySettings

    def __init__(
        self,
        *,
        settings: GatewaySettings | None = None,
        call_timeout: float = 10.0,
        bus_target: str | None = None,
    ) -> None:
        self.settings = settings or GatewaySettings()
        self._call_timeout = call_timeout
        self._bus_target = bus_target
        self._orb: Orb | None = None
        self._channel: grpc.Channel | None = None
        self._reporter: TrafficReporter | None = None
        self._bound: dict[str, Any] = {}
        self.iors: dict[str, str] = {}

    @classmethod
    def from_settings(cls, settings: GatewaySettings, config: NodeConfig) -> CorbaGatewayNode:
        if config.bus is None:
            raise ConfigError("bus: the CORBA gateway forwards to a bus; give --bus")
        return cls(
            settings=settings,
            call_timeout=config.call_timeout.total_seconds(),
            bus_target=str(config.bus),
        )

    @classmethod
    def dependencies(cls) -> tuple[BusClient[Any], ...]:
        """Every bridged service but the bus's own, as optional dependencies."""
        clients = []
        for service in installed_services():
            if service.full_name.startswith(BUS_SERVICES):
                continue
            module = importlib.import_module(
                service.file.name.removesuffix(".proto").replace("/", ".") + "_pb2_grpc"
            )
            stub = getattr(module, f"{service.name}Stub")
            clients.append(BusClient(stub, required=False))
        return tuple(clients)

    def metadata(self) -> Mapping[str, str]:
        return {"iiop": str(self._orb.address)} if self._orb is not None else {}

    async def on_start(self) -> None:
        # The reporter exists before the servants that count calls into it.
        self._reporter = TrafficReporter(
            channel=self.bus.channel,
            reporter=self.node_id,
            interval=self.settings.report_interval.total_seconds(),
            origin=traffic_pb2.CALL_ORIGIN_IIOP,
        )
        await self._reporter.start()
        try:
            await asyncio.to_thread(self._start_corba, self._reporter)
        except BaseException:
            reporter, self._reporter = self._reporter, None
            await reporter.stop()
            raise

    def _start_corba(self, traffic: TrafficReporter) -> None:
        schema = CorbaSchema.installed()
        stubs = schema.load_stubs(cache_dir=self.settings.stubs_dir)
        codec = IdlCodec(names=schema.names)
        user_exceptions = {
            name: stubs.attribute(scoped) for name, scoped in schema.exceptions.items()
        }
        target = self._bus_target or self.bus.target
        self._channel = grpc.insecure_channel(target)
        orb = self._orb = Orb(
            config=OrbConfig(call_timeout=self.settings.corba_timeout, listen=self.settings.iiop)
        )
        orb.start()
        for interface in schema.interfaces():
            bridges = {
                op.name: OperationBridge(
                    operation=op,
                    codec=codec,
                    channel=self._channel,
                    timeout=self._call_timeout,
                    caller=self.node_id,
                    traffic=traffic,
                    user_exceptions=user_exceptions,
                    tracing=self.bus.tracing,
                )
                for op in interface.operations
            }
            ref = orb.activate(servant_class(interface, stubs, bridges)())
            self.iors[repository_id(interface.scoped_name)] = orb.ior(ref)
            self._bound[_naming_path(self.settings.naming_prefix, interface)] = ref
        log.info("%s serving %d CORBA interfaces on %s", self.node_id, len(self.iors), orb.address)
        if self.settings.naming:
            naming = NamingService(orb, self.settings.naming)
            for path, ref in self._bound.items():
                naming.rebind(path, ref)
            log.info("%s bound %d names in %s", self.node_id, len(self._bound), naming.reference)
        if self.settings.ior_file is not None:
            write_ior_file(self.settings.ior_file, self.iors)

    async def on_stop(self) -> None:
        reporter, self._reporter = self._reporter, None
        try:
            if reporter is not None:
                await reporter.stop()
        finally:
            await asyncio.to_thread(self._stop_corba)

    def _stop_corba(self) -> None:
        orb, self._orb = self._orb, None
        if orb is not None:
            if self.settings.naming and orb.orb is not None:
                naming = NamingService(orb, self.settings.naming)
                for path, ref in self._bound.items():
                    try:
                        naming.unbind(path, only=ref)
                    except PowerbusError:
                        break  # the naming service is gone; nothing to clean up there
            # Calls in progress finish first: each is bounded by the gRPC deadline.
            orb.stop()
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()


def _naming_path(prefix: str, interface: Interface) -> str:
    path = interface.scoped_name.strip(":").replace("::", "/")
    return f"{prefix.strip('/')}/{path}" if prefix.strip("/") else path
