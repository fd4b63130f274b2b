"""The legacy CIS adapter node: ``powerbus.crm.v1.Customers`` served by a legacy CORBA CIS.

It registers the canonical proto service on the bus and answers each rpc the mapping
declares (``idl/legacy/LegacyCIS.crm.toml``) by calling the legacy object, in a worker
thread, with the caller's deadline as the CORBA call timeout. Rpcs the mapping leaves
out answer UNIMPLEMENTED. No code here knows a customer: the mapping says it all.

::

    powerbus sim legacy-cis --ior-file cis.json &
    powerbus node legacy-cis --bus 127.0.0.1:50051 --id cis-1 --ior-file cis.json
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from google.protobuf.message import Message

from powerbus.adapters.corba.legacy.engine import LegacyService
from powerbus.adapters.corba.legacy.mapping import MappingSpec
from powerbus.adapters.corba.legacy.paths import legacy_file
from powerbus.adapters.corba.legacy.target import LegacyTarget
from powerbus.adapters.corba.orb import Orb, OrbConfig
from powerbus.adapters.corba.stubs import load_stubs
from powerbus.bus.kernel.errors import PowerbusError, Unimplemented
from powerbus.crm.v1 import crm_pb2_grpc
from powerbus.nodes.legacy_cis.config import LegacySettings
from powerbus.nodes.sdk.config import NodeConfig
from powerbus.nodes.sdk.node import ConfiguredNode

__all__ = ["LegacyCisNode"]

log = logging.getLogger(__name__)

Handler = Callable[[Message, grpc.aio.ServicerContext[Any, Any]], Awaitable[Message]]


class LegacyCisNode(ConfiguredNode[LegacySettings], crm_pb2_grpc.CustomersServicer):
    """``powerbus node legacy-cis``: the CIS as the first CRM backend on the bus.

    >>> [s.name for s in LegacyCisNode.served_services()]
    ['powerbus.crm.v1.Customers']
    """

    kind = "legacy-cis"
    settings_type = LegacySettings

    def __init__(self, *, settings: LegacySettings) -> None:
        self.settings = settings
        self._orb: Orb | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._service: LegacyService | None = None
        self._target: LegacyTarget | None = None
        self._install(self._unmapped_handlers())

    @classmethod
    def from_settings(cls, settings: LegacySettings, config: NodeConfig) -> LegacyCisNode:
        return cls(settings=settings)

    def metadata(self) -> Mapping[str, str]:
        if self._target is None or self._service is None:
            return {}
        return {"legacy": self._target.source, "mapping": self._service.spec.path.name}

    async def on_start(self) -> None:
        mapping = self.settings.mapping or legacy_file("LegacyCIS.crm.toml")
        spec = MappingSpec.load(mapping)
        stubs = await asyncio.to_thread(load_stubs, spec.idl, cache_dir=self.settings.stubs_dir)
        service = self._service = LegacyService.compile(spec, stubs=stubs)
        orb = self._orb = Orb(config=OrbConfig(call_timeout=self.settings.legacy_timeout))
        orb.start()
        self._executor = ThreadPoolExecutor(
            max_workers=self.settings.workers, thread_name_prefix=f"{self.node_id}-legacy"
        )
        self._target = LegacyTarget(
            orb=orb,
            interface=stubs.objref(spec.interface),
            repository_id=service.interface_id,
            ior_file=self.settings.ior_file,
            naming=self.settings.naming,
            name=self.settings.name or spec.naming,
        )
        self._install({rpc: self._handler(rpc) for rpc in service.methods})
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._target.reference)
        except PowerbusError as exc:  # the CIS may come up later; calls will try again
            log.warning("%s: legacy CIS not reachable yet: %s", self.node_id, exc)

    def _install(self, handlers: Mapping[str, Handler]) -> None:
        # The runner adds the servicer to the server after on_start, reading these.
        for rpc, handler in handlers.items():
            setattr(self, rpc, handler)

    def _unmapped_handlers(self) -> dict[str, Handler]:
        descriptor = crm_pb2_grpc.CustomersServicer  # the generated base lists every rpc
        names = [n for n in vars(descriptor) if not n.startswith("_")]
        return {name: _unmapped(name) for name in names}

    def _handler(self, rpc: str) -> Handler:
        async def handle(request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> Message:
            assert self._service is not None and self._target is not None
            service, target = self._service, self._target
            method = service.methods[rpc]
            remaining = context.time_remaining()
            timeout = self.settings.legacy_timeout.total_seconds()
            if remaining is not None:
                timeout = max(0.001, min(timeout, remaining))

            def work() -> Message:
                try:
                    return target.invoke(
                        lambda ref: service.call(ref, rpc, request),
                        timeout=timeout,
                        idempotent=method.idempotent,
                    )
                except PowerbusError:
                    raise
                except Exception as exc:  # CORBA exceptions: the mapping and table decide
                    raise service.error_for(exc) from None

            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, work)

        return handle

    async def on_stop(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
        orb, self._orb = self._orb, None
        if orb is not None:
            await asyncio.to_thread(orb.stop)


def _unmapped(rpc: str) -> Handler:
    async def handle(request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> Message:
        raise Unimplemented(f"{rpc}: the legacy CIS mapping does not provide it")

    return handle
