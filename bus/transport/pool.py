"""Long-lived connections to nodes, one set per node address: a gRPC channel, the node
link on it, and the transport that chooses between them.

Creating a channel per call would pay a TCP and HTTP/2 handshake each time; a node's
connections are kept while it is registered and closed when it goes away. The router and
the SDK's proxyless client each own one pool.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable
from typing import Any

import grpc

from powerbus.bus.kernel.tls import TlsFiles
from powerbus.bus.transport.frames import LINK_MAX_BYTES
from powerbus.bus.transport.grpc_transport import GrpcTransport
from powerbus.bus.transport.link import NodeLink
from powerbus.bus.transport.reply import Metadata, Reply

__all__ = ["NodeTransport", "UpstreamPool"]

MAX_MESSAGE_BYTES = 64 * 1024 * 1024

# Keepalive finds a dead node (SIGKILL, lost network) without waiting for a call to fail.
_CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # Balancing across nodes is ours; one subchannel per node address.
    ("grpc.lb_policy_name", "pick_first"),
    ("grpc.enable_retries", 0),
)
# Calls already on a retired node's channel may finish (a draining node).
_RETIRE_GRACE_S = 30.0

_SHAPES = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


class NodeTransport:
    """Unary calls to one node: on the node link when it is up and the request small,
    else as gRPC calls, so the link can only make calls cheaper, never make them fail."""

    __slots__ = ("grpc", "link")

    def __init__(self, link: NodeLink, grpc_transport: GrpcTransport) -> None:
        self.link = link
        self.grpc = grpc_transport

    def call(
        self, path: str, metadata: Metadata, payload: bytes, timeout: float | None
    ) -> Awaitable[Reply]:
        # A plain function handing back the chosen transport's coroutine: no frame of its own.
        if len(payload) <= LINK_MAX_BYTES and self.link.usable():
            return self.link.call(path, metadata, payload, timeout)
        return self.grpc.call(path, metadata, payload, timeout)


class UpstreamPool:
    """Channels, links and transports by node address, and per-method stream callables.

    >>> # pool = UpstreamPool(); reply = await pool.transport("127.0.0.1:7001").call(...)
    >>> # pool.retain({"127.0.0.1:7001"}); await pool.close()
    """

    def __init__(self, *, tls: TlsFiles | None = None) -> None:
        self._tls = tls
        self._transports: dict[str, NodeTransport] = {}
        self._callables: dict[tuple[str, str, str], Any] = {}
        self._retiring: dict[asyncio.Task[None], NodeTransport] = {}

    def transport(self, address: str) -> NodeTransport:
        """The transport for unary calls to the node at ``address`` (made on first use)."""
        found = self._transports.get(address)
        if found is None:
            channel, link_ssl = self._open_channel(address)
            found = NodeTransport(NodeLink(channel, address, ssl=link_ssl), GrpcTransport(channel))
            self._transports[address] = found
        return found

    def _open_channel(self, address: str) -> tuple[grpc.aio.Channel, ssl.SSLContext | None]:
        """A channel to ``address``, and the ssl context of its link (TLS: both secured;
        the files are read now, so a channel opened after a rotation uses the new pair)."""
        if self._tls is None:
            return grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS), None
        credentials = self._tls.channel_credentials()
        channel = grpc.aio.secure_channel(address, credentials, options=_CHANNEL_OPTIONS)
        return channel, self._tls.client_context()

    def addresses(self) -> set[str]:
        """The node addresses connections are kept to."""
        return set(self._transports)

    def channel(self, address: str) -> grpc.aio.Channel:
        """The long-lived channel to ``address`` (health probes and streams share it)."""
        return self.transport(address).grpc.channel

    def callable(
        self, address: str, path: str, shape: str, serializer: Any = None, deserializer: Any = None
    ) -> Any:
        """The multi-callable of ``shape`` (``unary_stream``, ...) for ``path`` at
        ``address``; without (de)serializers, bytes pass through untouched."""
        key = (address, path, shape)
        found = self._callables.get(key)
        if found is None:
            assert shape in _SHAPES, shape
            factory = getattr(self.channel(address), shape)
            found = self._callables[key] = factory(
                path, request_serializer=serializer, response_deserializer=deserializer
            )
        return found

    def retain(self, addresses: set[str]) -> None:
        """Close the connections to addresses no longer in use (in the background; the
        tasks are awaited by :meth:`close`)."""
        for address in [a for a in self._transports if a not in addresses]:
            transport = self._transports.pop(address)
            self._callables = {k: v for k, v in self._callables.items() if k[0] != address}
            task = asyncio.get_running_loop().create_task(_retire(transport, _RETIRE_GRACE_S))
            self._retiring[task] = transport
            task.add_done_callback(self._retired)

    async def close(self) -> None:
        """Close every connection now, and wait for those being retired."""
        transports, self._transports, self._callables = list(self._transports.values()), {}, {}
        await asyncio.gather(*(_retire(t, None) for t in transports), return_exceptions=True)
        retiring, self._retiring = self._retiring, {}
        for task in retiring:
            task.cancel()
        await asyncio.gather(*retiring, return_exceptions=True)
        # Cut short: close them without the grace they were given.
        await asyncio.gather(*(_retire(t, None) for t in retiring.values()), return_exceptions=True)

    def _retired(self, task: asyncio.Task[None]) -> None:
        self._retiring.pop(task, None)


async def _retire(transport: NodeTransport, grace: float | None) -> None:
    await transport.link.close()
    await transport.grpc.channel.close(grace=grace)
