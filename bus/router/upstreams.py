"""Long-lived channels from the bus to nodes, one per node address.

Creating a channel per call would pay a TCP and HTTP/2 handshake each time; a channel is
kept while its node is registered and closed when the node goes away.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc

from powerbus.bus.router.link import NodeLink

__all__ = ["UpstreamPool"]

# Keepalive finds a dead node (SIGKILL, lost network) without waiting for a call to fail.
_CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    # The router balances across nodes itself; one subchannel per node address.
    ("grpc.lb_policy_name", "pick_first"),
    ("grpc.enable_retries", 0),
)

_Factory = Callable[[grpc.aio.Channel, str], Any]
_FACTORIES: dict[str, _Factory] = {
    "unary": lambda ch, path: ch.unary_unary(path),
    "server_stream": lambda ch, path: ch.unary_stream(path),
    "client_stream": lambda ch, path: ch.stream_unary(path),
    "bidi_stream": lambda ch, path: ch.stream_stream(path),
}


class UpstreamPool:
    """Channels to node addresses and the per-method callables on them.

    Callables carry no serializers, so request and reply bytes pass through untouched.
    """

    def __init__(self) -> None:
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._callables: dict[tuple[str, str], Any] = {}
        self._links: dict[str, NodeLink] = {}

    def link(self, address: str) -> NodeLink:
        """The node link to ``address``, on its channel (made on first use)."""
        found = self._links.get(address)
        if found is None:
            found = self._links[address] = NodeLink(self.channel(address), address)
        return found

    def callable(self, address: str, path: str, kind: str) -> Any:
        """The multi-callable for ``path`` on the node at ``address`` (cached)."""
        key = (address, path)
        found = self._callables.get(key)
        if found is None:
            found = self._callables[key] = _FACTORIES[kind](self.channel(address), path)
        return found

    def channel(self, address: str) -> grpc.aio.Channel:
        """The long-lived channel to ``address`` (health probes share it)."""
        channel = self._channels.get(address)
        if channel is None:
            channel = grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS)
            self._channels[address] = channel
        return channel

    def retain(self, addresses: set[str]) -> None:
        """Close channels to addresses no longer in use (in the background)."""
        for address in [a for a in self._channels if a not in addresses]:
            channel = self._channels.pop(address)
            self._callables = {k: v for k, v in self._callables.items() if k[0] != address}
            link = self._links.pop(address, None)
            # Grace lets calls already on the channel finish (a draining node).
            asyncio.get_running_loop().create_task(_close(channel, link))

    async def close(self) -> None:
        links, self._links = list(self._links.values()), {}
        await asyncio.gather(*(link.close() for link in links), return_exceptions=True)
        channels, self._channels, self._callables = list(self._channels.values()), {}, {}
        await asyncio.gather(*(c.close(grace=None) for c in channels), return_exceptions=True)


async def _close(channel: grpc.aio.Channel, link: NodeLink | None) -> None:
    if link is not None:
        await link.close()
    await channel.close(grace=30.0)
