"""Who may register at all: addresses in allowed networks (the registration rate per peer is
a :class:`powerbus.bus.kernel.peers.PeerRateLimit`).

Both the rate and the networks are checked before a registration touches the database, so
a flood of registrations or one naming an address the bus should never dial costs almost
nothing.

>>> rules = NetworkRules.default()
>>> rules.refusal("127.0.0.1") is None, rules.refusal("10.1.2.3") is None
(True, True)
>>> rules.refusal("169.254.169.254")
'169.254.169.254 is in 169.254.0.0/16, which the bus refuses (link-local and cloud metadata)'
>>> rules.refusal("8.8.8.8")[:45]
'8.8.8.8 is in none of the allowed networks (1'
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from powerbus.bus.kernel.errors import ConfigError, PermissionDenied

__all__ = [
    "DEFAULT_ALLOWED",
    "DEFAULT_DENIED",
    "NetworkRules",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_ALLOWED = (
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
)
"""Loopback and private ranges: where nodes of one site live."""

DEFAULT_DENIED = (
    "169.254.0.0/16",
    "fe80::/10",
    "fd00:ec2::254/128",
    "100.100.100.200/32",
)
"""Link-local (cloud metadata at 169.254.169.254) and the metadata addresses that are not
link-local (AWS's IPv6 one, Alibaba's); denial wins over an allowed network."""

_RESOLVE_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class NetworkRules:
    """Allowed networks for registration addresses; ``denied`` wins over ``allowed``."""

    allowed: tuple[Network, ...]
    denied: tuple[Network, ...]

    @classmethod
    def default(cls) -> NetworkRules:
        return cls.parse(DEFAULT_ALLOWED, DEFAULT_DENIED)

    @classmethod
    def parse(cls, allowed: Iterable[str], denied: Iterable[str]) -> NetworkRules:
        """CIDRs as text; raises :class:`ConfigError` naming the one that does not parse."""
        return cls(_networks("allowed_networks", allowed), _networks("denied_networks", denied))

    def refusal(self, ip: str) -> str | None:
        """Why ``ip`` (a literal address) may not be registered, or None."""
        address = ipaddress.ip_address(ip)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        for network in self.denied:
            if address.version == network.version and address in network:
                return (
                    f"{ip} is in {network}, which the bus refuses (link-local and cloud metadata)"
                )
        if any(address.version == n.version and address in n for n in self.allowed):
            return None
        listed = ", ".join(str(n) for n in self.allowed) or "none configured"
        return f"{ip} is in none of the allowed networks ({listed})"

    async def check(self, host: str) -> None:
        """Raise :class:`PermissionDenied` naming the address and the rule it breaks; a
        name is resolved (with a deadline) and every address it gives must pass."""
        try:
            ipaddress.ip_address(host)
            addresses: Sequence[str] = (host,)
        except ValueError:
            addresses = await _resolve(host)
        for ip in addresses:
            why = self.refusal(ip)
            if why is not None:
                shown = ip if ip == host else f"{host} ({ip})"
                raise PermissionDenied(
                    f"address: {shown} may not be registered: {why.removeprefix(ip + ' ')}"
                )


def _networks(name: str, texts: Iterable[str]) -> tuple[Network, ...]:
    found: list[Network] = []
    for text in texts:
        try:
            found.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError as exc:
            raise ConfigError(f"{name}: {text!r} is not a network ({exc})") from None
    return tuple(found)


async def _resolve(host: str) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        found = await asyncio.wait_for(
            loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), _RESOLVE_TIMEOUT_S
        )
    except (OSError, asyncio.TimeoutError) as exc:
        raise PermissionDenied(f"address: {host} does not resolve ({exc or 'timed out'})") from None
    return sorted({str(info[4][0]) for info in found})
