"""With TLS, a node registers only an address that serves its own certificate.

A node holding a valid certificate for ``node/a`` could otherwise register as ``a`` with
the address of a server it controls that presents another identity's certificate (or
register ``a`` at the address where node ``b`` serves). Before accepting a registration
the bus opens a TLS connection to the address, as it will to forward calls, and reads
the certificate served there: it must name ``node/<node_id>``.
"""

from __future__ import annotations

import asyncio
import contextlib

from powerbus.bus.kernel.addresses import parse_host_port
from powerbus.bus.kernel.errors import PermissionDenied, Unavailable
from powerbus.bus.kernel.identity import name_from_certificate, node_identity
from powerbus.bus.kernel.tls import TlsFiles

__all__ = ["check_served_identity"]

CHECK_TIMEOUT_S = 2.0


async def check_served_identity(
    node_id: str, address: str, tls: TlsFiles, *, timeout: float = CHECK_TIMEOUT_S
) -> None:
    """Return if the certificate served at ``address`` names ``node/<node_id>``; else
    :class:`PermissionDenied` naming both, or (retriable) :class:`Unavailable` if the
    address cannot be reached within ``timeout``."""
    where = parse_host_port(address, field="address")
    context = tls.client_context()
    try:
        _reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                where.host, where.port, ssl=context, server_hostname=where.host
            ),
            timeout,
        )
    except (OSError, asyncio.TimeoutError) as error:
        raise Unavailable(
            f"address: cannot check the certificate served at {address}: "
            f"{error or type(error).__name__}"
        ) from None
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), timeout)
    served = name_from_certificate(der) if der else ""
    if served != node_identity(node_id):
        raise PermissionDenied(
            f"Register {node_id}: the certificate served at {address} names {served!r}, "
            f"not {node_identity(node_id)!r}"
        )
