"""TLS and mutual TLS from PEM files, with certificates re-read when they are rotated.

One :class:`TlsFiles` (certificate, key, optional CA) describes a process's side; with a
CA, peers must present a certificate it signed (mTLS). Servers get
:meth:`TlsFiles.server_credentials` (grpc's dynamic credentials: each new handshake asks
the fetcher, which re-reads the files when their modification time changed, so rotated
certificates take effect without a restart and without dropping calls already running);
clients get :meth:`TlsFiles.channel_credentials` (read at channel creation).

Without TLS a process serves plaintext on loopback addresses only:
:func:`check_plaintext_listen` refuses anything else unless ``insecure`` is set, and then
logs a warning every time it is called (at every start).

>>> files = TlsFiles(cert=Path("bus.pem"), key=Path("bus.key"), ca=Path("ca.pem"))
>>> files.mutual
True
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import ssl
import threading
from pathlib import Path

import grpc

from powerbus.bus.kernel.errors import ConfigError

__all__ = [
    "CertificateSource",
    "TlsFiles",
    "check_plaintext_listen",
    "check_unguarded_listen",
    "is_loopback",
]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TlsFiles:
    """PEM files of one side of a TLS connection; ``ca`` given means mutual TLS."""

    cert: Path
    key: Path
    ca: Path | None = None

    @classmethod
    def from_settings(
        cls, *, cert: Path | None, key: Path | None, ca: Path | None
    ) -> TlsFiles | None:
        """``None`` when no TLS setting is given; a :class:`ConfigError` naming the missing
        one when only some are (a CA alone, or a certificate without its key)."""
        if cert is None and key is None and ca is None:
            return None
        if cert is None or key is None:
            missing = "tls_cert" if cert is None else "tls_key"
            raise ConfigError(
                f"{missing}: required with the other TLS settings (--{missing.replace('_', '-')})"
            )
        files = cls(cert=cert, key=key, ca=ca)
        files.load()  # a wrong path or a key not matching the certificate fails at start
        return files

    @property
    def mutual(self) -> bool:
        """Whether peers must present a certificate signed by ``ca``."""
        return self.ca is not None

    def load(self) -> tuple[bytes, bytes, bytes | None]:
        """The certificate chain, key and CA bundle as bytes, checked to belong together."""
        try:
            cert, key = self.cert.read_bytes(), self.key.read_bytes()
            ca = self.ca.read_bytes() if self.ca is not None else None
        except OSError as exc:
            raise ConfigError(f"tls: cannot read {exc.filename}: {exc.strerror}") from None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            context.load_cert_chain(self.cert, self.key)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(
                f"tls: {self.cert} and {self.key} are not a certificate and its key: {exc}"
            ) from None
        return cert, key, ca

    def mtimes(self) -> tuple[int, ...]:
        """Modification times of the files, to notice a rotation (missing file: -1)."""
        return tuple(_mtime(p) for p in (self.cert, self.key, self.ca) if p is not None)

    def server_credentials(self) -> grpc.ServerCredentials:
        """Server credentials that follow the files as they are rotated."""
        return CertificateSource(self).server_credentials()

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Client credentials: trust ``ca`` (else the system roots), present our certificate."""
        cert, key, ca = self.load()
        return grpc.ssl_channel_credentials(
            root_certificates=ca, private_key=key, certificate_chain=cert
        )

    def server_context(self) -> ssl.SSLContext:
        """An ``ssl`` server context (the node link) that follows rotated files: each
        handshake checks their modification times and switches to a fresh context."""
        return _RotatingContext(self).context

    def _fixed_server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        if self.ca is not None:
            context.load_verify_locations(self.ca)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def client_context(self) -> ssl.SSLContext:
        """An ``ssl`` client context (the node link) presenting our certificate."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca)
        context.load_cert_chain(self.cert, self.key)
        return context


class _RotatingContext:
    """An ssl server context whose handshakes move to a context made from the files as
    they are now, once they changed (OpenSSL's servername callback runs early enough in
    every handshake, with or without SNI, to swap the context)."""

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self._seen = files.mtimes()
        self._current = self._make()
        self.context = self._current

    def _make(self) -> ssl.SSLContext:
        context = self.files._fixed_server_context()
        context.sni_callback = self._on_hello
        return context

    def _on_hello(self, connection: ssl.SSLObject, _name: str | None, _ctx: ssl.SSLContext) -> None:
        now = self.files.mtimes()
        if now != self._seen:
            try:
                self.files.load()
                self._current = self._make()
                self._seen = now
                log.info("tls: link certificate reloaded from %s", self.files.cert)
            except (ConfigError, ssl.SSLError, OSError) as exc:
                log.warning("tls: rotated files not loaded yet, keeping the previous: %s", exc)
        if connection.context is not self._current:
            connection.context = self._current


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1


class CertificateSource:
    """The certificate configuration of a TLS server, re-read when the files change.

    grpc calls :meth:`fetch` before each new handshake (from its own threads). A rotation
    caught half-way (the new certificate written, the old key still there) does not load;
    the previous configuration then stays until the files are consistent again.
    """

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self._lock = threading.Lock()
        self._seen = files.mtimes()
        self.reloads = 0
        self._initial = self._configuration()

    def server_credentials(self) -> grpc.ServerCredentials:
        """grpc dynamic server credentials backed by this source."""
        return grpc.dynamic_ssl_server_credentials(
            self._initial,
            # grpc documents None as "keep the current one"; its type stubs leave it out.
            self.fetch,  # type: ignore[arg-type]
            require_client_authentication=self.files.mutual,
        )

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """A new configuration when the files changed and load, else ``None`` (keep)."""
        with self._lock:
            now = self.files.mtimes()
            if now == self._seen:
                return None
            try:
                fresh = self._configuration()
            except ConfigError as exc:
                log.warning("tls: rotated files not loaded yet, keeping the previous: %s", exc)
                return None
            self._seen = now
            self.reloads += 1
            log.info("tls: certificate reloaded from %s", self.files.cert)
            return fresh

    def _configuration(self) -> grpc.ServerCertificateConfiguration:
        cert, key, ca = self.files.load()
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names a loopback address (``localhost`` counts; ``0.0.0.0`` does not)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_unguarded_listen(what: str, host: str, *, access_control: bool, insecure: bool) -> None:
    """Refuse to serve beyond loopback without access control unless ``insecure``; then
    warn (every start). TLS proves who calls; only rules decide what they may do.

    >>> check_unguarded_listen("grpc", "127.0.0.1", access_control=False, insecure=False)
    """
    if is_loopback(host) or access_control:
        return
    if not insecure:
        raise ConfigError(
            f"{what}: refusing to serve on {host}, beyond loopback, without access control; "
            "give --access-control (rules: powerbus acl), or --insecure to allow it"
        )
    log.warning(
        "INSECURE: %s serves on %s, beyond loopback, without access control (--insecure)",
        what,
        host,
    )


def check_plaintext_listen(what: str, host: str, *, insecure: bool) -> None:
    """Refuse plaintext beyond loopback unless ``insecure``; then warn (every start).

    >>> check_plaintext_listen("grpc", "127.0.0.1", insecure=False)
    """
    if is_loopback(host):
        return
    if not insecure:
        raise ConfigError(
            f"{what}: refusing to serve plaintext on {host}, beyond loopback; give "
            "--tls-cert/--tls-key (and --tls-ca for mTLS), or --insecure to allow it"
        )
    log.warning(
        "INSECURE: %s serves plaintext on %s, beyond loopback, without TLS (--insecure)",
        what,
        host,
    )
