"""Who is calling: the identity a peer proved on the connection.

With mutual TLS a peer's identity is its certificate: the SPIFFE-style URI SAN
(``spiffe://powerbus/node/echo-1`` names ``node/echo-1``), else its common name. Without
TLS nothing is proved by the connection; a bearer token may prove it per call
(:mod:`powerbus.bus.access`), else the identity is anonymous (``IdentityMethod.NONE``).

>>> who = Identity(name="node/echo-1", method=IdentityMethod.CERTIFICATE, peer="ipv4:1.2.3.4:5")
>>> (who.authenticated, who.holds_node("echo-1"), who.holds_node("echo-2"))
(True, True, False)
>>> name_from_uri("spiffe://powerbus/bus/main")
'bus/main'
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any, Protocol

__all__ = [
    "SPIFFE_PREFIX",
    "Identity",
    "IdentityMethod",
    "identity_of",
    "name_from_certificate",
    "name_from_uri",
    "node_identity",
]

SPIFFE_PREFIX = "spiffe://powerbus/"


class IdentityMethod(str, Enum):
    """How an identity was established."""

    CERTIFICATE = "certificate"
    TOKEN = "token"
    """A bearer token the bus issued (``powerbus tokens create``)."""
    NONE = "none"


@dataclasses.dataclass(frozen=True, slots=True)
class Identity:
    """A caller: ``name`` like ``node/echo-1`` (empty when anonymous), how it was
    established, and the peer address grpc reports."""

    name: str
    method: IdentityMethod
    peer: str = ""

    @property
    def authenticated(self) -> bool:
        """Whether the name was proved (a certificate), not merely absent."""
        return self.method is not IdentityMethod.NONE

    def holds_node(self, node_id: str) -> bool:
        """Whether this identity may act as node ``node_id`` (anonymous: no check is possible,
        so the caller decides what anonymity allows)."""
        return self.name == node_identity(node_id)


class _AuthContextHolder(Protocol):
    def auth_context(self) -> Any: ...

    def peer(self) -> str: ...


def node_identity(node_id: str) -> str:
    """The identity name a node's certificate must carry: ``node/<node_id>``."""
    return f"node/{node_id}"


def name_from_uri(uri: str) -> str | None:
    """The identity name in a ``spiffe://powerbus/...`` URI, else ``None``."""
    if uri.startswith(SPIFFE_PREFIX) and len(uri) > len(SPIFFE_PREFIX):
        return uri[len(SPIFFE_PREFIX) :]
    return None


def identity_of(context: _AuthContextHolder) -> Identity:
    """The identity of the peer of a grpc servicer ``context`` (sync or aio)."""
    peer = context.peer() or ""
    # The common case first, and cheaply: grpc's peer_identities() is the certificate's
    # SANs alone, where auth_context() builds a dict of every property (the whole PEM
    # included) on each call, ten times the cost on a path every call takes.
    identities = getattr(context, "peer_identities", None)
    if identities is not None:
        for raw in identities() or ():
            name = name_from_uri(raw.decode("utf-8", "replace"))
            if name:
                return Identity(name=name, method=IdentityMethod.CERTIFICATE, peer=peer)
    auth = context.auth_context() or {}
    if auth.get("transport_security_type", [b""])[0] != b"ssl":
        return Identity(name="", method=IdentityMethod.NONE, peer=peer)
    for key in ("x509_subject_alternative_name", "peer_spiffe_id"):
        for raw in auth.get(key, ()):
            name = name_from_uri(raw.decode("utf-8", "replace"))
            if name:
                return Identity(name=name, method=IdentityMethod.CERTIFICATE, peer=peer)
    common = auth.get("x509_common_name", ())
    if common:
        name = common[0].decode("utf-8", "replace")
        return Identity(name=name, method=IdentityMethod.CERTIFICATE, peer=peer)
    return Identity(name="", method=IdentityMethod.NONE, peer=peer)


def name_from_certificate(der: bytes) -> str:
    """The identity a DER certificate names, as :func:`identity_of` reads a peer's: the
    ``spiffe://powerbus/`` URI SAN, else the common name ("" if it names neither)."""
    from cryptography import x509  # only where certificates are read: a heavy import

    cert = x509.load_der_x509_certificate(der)
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        sans = None
    if sans is not None:
        for uri in sans.get_values_for_type(x509.UniformResourceIdentifier):
            name = name_from_uri(uri)
            if name:
                return name
    common = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(common[0].value) if common else ""
