"""``grpc.health.v1.Health`` for the bus: the bus itself, and each registered service.

A service is SERVING while at least one of its nodes is up, so a load balancer or
Kubernetes probe in front of several bus instances can ask about a service by name.
"""

from __future__ import annotations

import asyncio
import contextlib

from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio

from powerbus.bus.registry import Directory

__all__ = ["BusHealth"]

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class BusHealth:
    """Keeps the health servicer's statuses in step with the directory."""

    def __init__(self, directory: Directory) -> None:
        self.servicer = health_aio.HealthServicer()
        self._directory = directory
        self._known: dict[str, int] = {}
        self._pending: asyncio.Task[None] | None = None

    async def serving(self) -> None:
        await self.servicer.set("", _SERVING)
        await self.refresh()

    async def refresh(self) -> None:
        """Publish each service's status where it changed."""
        names = set(self._directory.services()) | set(self._known)
        for name in sorted(names):
            entry = self._directory.service(name)
            status = _SERVING if entry is not None and entry.healthy else _NOT_SERVING
            if self._known.get(name) != status:
                self._known[name] = status
                await self.servicer.set(name, status)

    def schedule_refresh(self) -> None:
        """Refresh soon, from a synchronous directory listener; bursts coalesce into one."""
        if self._pending is None or self._pending.done():
            self._pending = asyncio.get_running_loop().create_task(self.refresh())

    async def close(self) -> None:
        """Wait for a scheduled refresh to finish (or cancel it)."""
        if self._pending is not None:
            self._pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pending
            self._pending = None

    async def shutting_down(self) -> None:
        """Everything NOT_SERVING from now on: the first phase of a graceful stop."""
        await self.servicer.enter_graceful_shutdown()
