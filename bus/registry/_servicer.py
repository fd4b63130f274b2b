"""The gRPC face of the registry: converts messages and delegates to ``Registry``.

Nothing a client sends can take it down: a powerbus error becomes its gRPC status with
its message; anything else is logged here and answered INTERNAL, without a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias

import grpc
from google.protobuf import duration_pb2, timestamp_pb2

from powerbus.bus.kernel.access_rules import Right
from powerbus.bus.kernel.errors import PowerbusError
from powerbus.bus.registry._validation import (
    check_heartbeat,
    check_lease,
    check_service_name,
    check_service_names,
)
from powerbus.bus.registry._watch import shown
from powerbus.bus.transport.grpc_status import abort_with
from powerbus.registry.v1 import registry_pb2, registry_pb2_grpc

if TYPE_CHECKING:
    from powerbus.bus.registry.registry import Registry

__all__ = ["RegistryServicer"]

log = logging.getLogger(__name__)

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


async def _abort(context: Context, exc: Exception, method: str) -> NoReturn:
    if isinstance(exc, grpc.aio.AbortError):
        raise exc
    if isinstance(exc, PowerbusError):
        await abort_with(context, exc)
    log.error("registry %s failed", method, exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error in the registry's {method}")
    raise AssertionError("context.abort returned")  # pragma: no cover


class RegistryServicer(registry_pb2_grpc.RegistryServicer):
    """``powerbus.registry.v1.Registry`` for a grpc.aio server; get it from ``Registry``.

    >>> # registry_pb2_grpc.add_RegistryServicer_to_server(registry.servicer, server)
    """

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    async def Register(
        self, request: registry_pb2.RegisterRequest, context: Context
    ) -> registry_pb2.RegisterResponse:
        access = self._registry.access
        await access.require_node(context, request.node_id, "Register")
        for service in request.services:  # each service the identity may serve
            await access.require(context, Right.SERVE, service)
        try:
            lease_id, ttl = await self._registry._register(request, peer=context.peer())
        except Exception as exc:
            await _abort(context, exc, "Register")
        lease_ttl, interval = duration_pb2.Duration(), duration_pb2.Duration()
        lease_ttl.FromTimedelta(ttl)
        interval.FromTimedelta(ttl / 3)
        return registry_pb2.RegisterResponse(
            lease_id=lease_id, lease_ttl=lease_ttl, heartbeat_interval=interval
        )

    async def Heartbeat(
        self, request: registry_pb2.HeartbeatRequest, context: Context
    ) -> registry_pb2.HeartbeatResponse:
        await self._registry.access.require_node(context, request.node_id, "Heartbeat")
        try:
            load = check_heartbeat(request)
            expires = await self._registry._heartbeat(request.node_id, request.lease_id, load)
        except Exception as exc:
            await _abort(context, exc, "Heartbeat")
        stamp = timestamp_pb2.Timestamp()
        stamp.FromDatetime(expires)
        return registry_pb2.HeartbeatResponse(lease_expires_at=stamp)

    async def Deregister(
        self, request: registry_pb2.DeregisterRequest, context: Context
    ) -> registry_pb2.DeregisterResponse:
        await self._registry.access.require_node(context, request.node_id, "Deregister")
        try:
            check_lease(request.node_id, request.lease_id)
            await self._registry._deregister(request.node_id, request.lease_id)
        except Exception as exc:
            await _abort(context, exc, "Deregister")
        return registry_pb2.DeregisterResponse()

    async def ListNodes(
        self, request: registry_pb2.ListNodesRequest, context: Context
    ) -> registry_pb2.ListNodesResponse:
        await self._registry.access.require(context, Right.READ, "registry")
        try:
            if request.service:
                check_service_name("service", request.service)
            found = await self._registry._list_nodes(
                service=request.service or None, include_down=request.include_down
            )
        except Exception as exc:
            await _abort(context, exc, "ListNodes")
        return registry_pb2.ListNodesResponse(nodes=[shown(n) for n in found])

    async def GetAccessRules(
        self, request: registry_pb2.GetAccessRulesRequest, context: Context
    ) -> registry_pb2.GetAccessRulesResponse:
        access = self._registry.access
        await access.require(context, Right.READ, "registry")
        return registry_pb2.GetAccessRulesResponse(
            enabled=access.enabled,
            rules=[
                registry_pb2.AccessRule(
                    rule_id=r.rule_id,
                    identity=r.identity,
                    right=r.right.value,
                    target=r.target,
                    effect=r.effect.value,
                )
                for r in access.rules.rules
            ],
        )

    async def Watch(
        self, request: registry_pb2.WatchRequest, context: Context
    ) -> AsyncIterator[registry_pb2.WatchEvent]:
        await self._registry.access.require(context, Right.READ, "registry")
        try:
            services = check_service_names("services", request.services)
            watch = self._registry._watch(frozenset(services))
        except Exception as exc:
            await _abort(context, exc, "Watch")
        try:
            for existing in watch.snapshot_events():
                yield existing
            while (event := await watch.next()) is not None:
                yield event
        except Exception as exc:
            await _abort(context, exc, "Watch")
        finally:
            watch.close()
