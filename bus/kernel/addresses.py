"""Network addresses as they appear on the command line, in state files and in the registry."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from powerbus.bus.kernel.errors import InvalidArgument

__all__ = ["HostPort", "parse_host_port"]


@dataclass(frozen=True, slots=True)
class HostPort:
    """A TCP endpoint. Port 0 asks the operating system for a free port."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def dialled_locally(self) -> HostPort:
        """This listening address as a process on the same host dials it: a wildcard
        host (every interface) becomes loopback, which a TLS certificate can name.

        >>> str(HostPort("0.0.0.0", 5).dialled_locally()), str(HostPort("::", 5).dialled_locally())
        ('127.0.0.1:5', '[::1]:5')
        """
        try:
            address = ipaddress.ip_address(self.host)
        except ValueError:
            return self
        if not address.is_unspecified:
            return self
        return HostPort("::1" if address.version == 6 else "127.0.0.1", self.port)


def parse_host_port(text: str, *, field: str = "address", allow_zero: bool = True) -> HostPort:
    """Parse ``host:port`` (``[v6]:port`` for IPv6).

    >>> parse_host_port("127.0.0.1:50051")
    HostPort(host='127.0.0.1', port=50051)

    Raises :class:`InvalidArgument` naming ``field`` when the text is not such an address.
    """
    raw = text.strip()
    bracketed = raw.startswith("[")
    if bracketed:
        host, sep, port_text = raw[1:].partition("]:")
    else:
        host, sep, port_text = raw.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise InvalidArgument(field, f"expected host:port, got {text!r}")
    port = int(port_text)
    if not (0 if allow_zero else 1) <= port <= 65535:
        raise InvalidArgument(field, f"port out of range in {text!r}")
    if bracketed or ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise InvalidArgument(field, f"bad IPv6 host in {text!r}") from None
    elif any(c.isspace() or c in "/?#@" for c in host):
        raise InvalidArgument(field, f"bad host in {text!r}")
    return HostPort(host, port)
