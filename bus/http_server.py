"""An ASGI app served by uvicorn inside a process that owns its own signal handling."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator, Sequence

import uvicorn
from starlette.types import ASGIApp

from powerbus.bus.http_deadlines import HttpLimits, bounded_h11_protocol
from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.lifecycle import Lifecycle

__all__ = ["HttpServer"]


class _EmbeddedUvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The owning process handles SIGTERM/SIGINT and stops us; uvicorn must not.
        yield


class HttpServer(Lifecycle):
    """Serves ``app`` on ``address`` (port 0 picks a free one) until :meth:`stop`.

    The client address requests see is the connection's own, or, from one of
    ``trusted_proxies`` (IP addresses), what its ``X-Forwarded-For`` says.

    >>> # async with HttpServer(app, HostPort("127.0.0.1", 0)) as http: print(http.address)
    """

    def __init__(
        self,
        app: ASGIApp,
        address: HostPort,
        limits: HttpLimits | None = None,
        *,
        trusted_proxies: Sequence[str] = (),
    ) -> None:
        limits = limits or HttpLimits()
        config = uvicorn.Config(
            app,
            host=address.host,
            port=address.port,
            # X-Forwarded-For/-Proto only from the proxies named: uvicorn would trust any
            # client on loopback, which could then pose as any host to the login limit.
            proxy_headers=bool(trusted_proxies),
            forwarded_allow_ips=list(trusted_proxies) or None,
            http=bounded_h11_protocol(limits),
            limit_concurrency=limits.max_connections,
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
        self._server = _EmbeddedUvicorn(config)
        self._task: asyncio.Task[None] | None = None
        self.address = address

    async def start(self, *, timeout: float = 10.0) -> None:
        self._task = asyncio.create_task(self._server.serve(), name="http-server")
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError(f"HTTP server on {self.address} stopped while starting")
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"HTTP server on {self.address} not up within {timeout}s")
            await asyncio.sleep(0.01)
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        self.address = HostPort(host, port)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        task, self._task = self._task, None
        with contextlib.suppress(asyncio.CancelledError):
            await task
