"""The demo's security: a CA made on the fly, a certificate per process, and the access
rules the demo's nodes need (and nothing more), so ``powerbus demo`` runs with mTLS and
access control on, as production should.

Each node kind may serve its own domain's services and call only the domains it uses;
the operator's certificate (``client/demo``) may call, read and change policy.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TypedDict

import grpc

from powerbus.bus.access import Actor, Effect, Right
from powerbus.bus.access.store import AccessStore
from powerbus.bus.kernel.certificates import IdentityKind, init_ca, issue
from powerbus.bus.kernel.tls import TlsFiles

__all__ = ["DEMO_CLIENT", "DemoSecurity", "demo_channel"]

DEMO_CLIENT = "demo"
"""The operator's identity in the demo: ``client/demo``."""

# node id prefix -> (domain served, domains called)
_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "echo": ("powerbus.echo.v1.*", ()),
    "metering": ("powerbus.metering.v1.*", ()),
    "crm": (
        "powerbus.crm.v1.*",
        ("powerbus.billing.v1.*", "powerbus.payment.v1.*", "powerbus.metering.v1.*"),
    ),
    "billing": ("powerbus.billing.v1.*", ("powerbus.metering.v1.*", "powerbus.crm.v1.*")),
    # The payment node fetches statements from the bank nodes directly (proxyless).
    "payment": (
        "powerbus.payment.v1.*",
        ("powerbus.billing.v1.*", "powerbus.payment.v1.BankGateway"),
    ),
    "bank": ("powerbus.payment.v1.BankGateway", ("powerbus.payment.v1.*", "powerbus.billing.v1.*")),
}


class TlsFlags(TypedDict, total=False):
    """The TLS flags of a process."""

    tls_cert: str
    tls_key: str
    tls_ca: str


class BusFlags(TlsFlags, total=False):
    """The bus's: TLS and access control."""

    access_control: bool


@dataclasses.dataclass(frozen=True)
class DemoSecurity:
    """Certificates in ``certs`` and the rules in the bus database ``db_url``."""

    certs: Path

    @classmethod
    def create(cls, work: Path, db_url: str) -> DemoSecurity:
        """A fresh CA, the bus's and the operator's certificates, and the demo's rules."""
        certs = work / "certs"
        init_ca(certs, force=True)
        issue(certs, IdentityKind.BUS, "demo")
        issue(certs, IdentityKind.CLIENT, DEMO_CLIENT)
        _rules(db_url)
        return cls(certs)

    def _files(self, kind: IdentityKind, name: str) -> TlsFiles:
        stem = f"{kind.value}-{name}"
        return TlsFiles(
            cert=self.certs / f"{stem}.pem",
            key=self.certs / f"{stem}.key",
            ca=self.certs / "ca.pem",
        )

    @staticmethod
    def _flags(files: TlsFiles) -> TlsFlags:
        return TlsFlags(tls_cert=str(files.cert), tls_key=str(files.key), tls_ca=str(files.ca))

    def bus_flags(self) -> BusFlags:
        """``powerbus bus`` flags: mTLS and access control."""
        files = self._files(IdentityKind.BUS, "demo")
        return BusFlags(**self._flags(files), access_control=True)

    def node_flags(self, node_id: str) -> TlsFlags:
        """``powerbus node`` flags for ``node_id`` (for ``ProcessGroup.start_node``), its
        certificate issued now."""
        issue(self.certs, IdentityKind.NODE, node_id)
        return self._flags(self._files(IdentityKind.NODE, node_id))

    def node_args(self, node_id: str) -> dict[str, str]:
        """:meth:`node_flags` as a plain mapping, for a command line built by hand."""
        flags = self.node_flags(node_id)
        return {key: str(value) for key, value in flags.items()}

    @property
    def client(self) -> TlsFiles:
        """The operator's certificate (the demo's own calls, and the commands it prints)."""
        return self._files(IdentityKind.CLIENT, DEMO_CLIENT)

    def client_env(self) -> dict[str, str]:
        """The environment under which ``powerbus`` commands present the operator's
        certificate."""
        files = self.client
        return {
            **os.environ,
            "POWERBUS_TLS_CERT": str(files.cert),
            "POWERBUS_TLS_KEY": str(files.key),
            "POWERBUS_TLS_CA": str(files.ca),
        }


def demo_channel(address: str, security: DemoSecurity | None) -> grpc.Channel:
    """A channel to the demo's bus: mTLS with the operator's certificate when secured."""
    if security is None:
        return grpc.insecure_channel(address)
    return grpc.secure_channel(address, security.client.channel_credentials())


def _rules(db_url: str) -> None:
    store = AccessStore.open(db_url)
    admin = Actor.local()
    add = store.rules.add
    try:
        for kind, (served, called) in _KINDS.items():
            add(f"node/{kind}-*", Right.SERVE, served, Effect.ALLOW, admin)
            for domain in called:
                add(f"node/{kind}-*", Right.CALL, f"{domain}/*", Effect.ALLOW, admin)
        add("node/*", Right.REPORT, "traffic", Effect.ALLOW, admin)
        add("node/*", Right.READ, "registry", Effect.ALLOW, admin)
        operator = f"client/{DEMO_CLIENT}"
        for right, target in ((Right.CALL, "*"), (Right.READ, "registry"), (Right.POLICY, "*")):
            add(operator, right, target, Effect.ALLOW, admin)
    finally:
        store.close()
