"""Metadata keys of the powerbus call contract, and how their values are read.

>>> IDEMPOTENT_KEY
'x-powerbus-idempotent'
>>> asserts_idempotent(" Yes ")
True
"""

from __future__ import annotations

__all__ = [
    "AFFINITY_KEY",
    "AUTHORIZATION_KEY",
    "BUS_TOKEN_PREFIX",
    "CALLER_KEY",
    "HTTP_TOKEN_PREFIX",
    "IDEMPOTENT_KEY",
    "IDENTITY_KEY",
    "asserts_idempotent",
]

AFFINITY_KEY = "x-powerbus-key"
"""Affinity key for consistent hashing (a meter or account id)."""
CALLER_KEY = "x-powerbus-caller"
"""The calling node's id."""
IDEMPOTENT_KEY = "x-powerbus-idempotent"
"""The caller asserts the call is safe to retry, for methods whose proto does not say so."""
IDENTITY_KEY = "x-powerbus-identity"
"""The caller's identity as the bus proved it (certificate or token), added by the router
when access control is on. A caller cannot set it: the router drops any it sent, and a node
believes it only from a bus (``powerbus.nodes.sdk.access.caller_identity``)."""
BUS_TOKEN_PREFIX = "pbt_"
"""How the bearer tokens of gRPC callers begin (``powerbus tokens create``)."""
HTTP_TOKEN_PREFIX = "pbh_"
"""How HTTP API tokens begin (``powerbus users token``): never mistaken for the others."""
AUTHORIZATION_KEY = "authorization"
"""``Bearer <token>``: a token from ``powerbus tokens create`` proving the caller's identity.
The bus reads it and never forwards it to a node."""

_TRUE = frozenset({"1", "true", "yes"})


def asserts_idempotent(value: str | bytes | None) -> bool:
    """Whether an ``x-powerbus-idempotent`` value says yes (``1``, ``true``, ``yes``, any case)."""
    if value is None:
        return False
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return value.strip().lower() in _TRUE
