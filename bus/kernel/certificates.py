"""A development certificate authority: a CA, and bus/node certificates it signs.

Certificates carry the SPIFFE-style URI SAN of their identity
(``spiffe://powerbus/bus/NAME`` or ``spiffe://powerbus/node/NODE_ID``), the same name as
common name, and ``127.0.0.1``/``localhost`` (plus any hosts asked for) as SANs, so one
certificate serves both as server and as client certificate. Keys are written 0600.

>>> # ca = init_ca(Path("certs"))
>>> # issue(Path("certs"), IdentityKind.NODE, "echo-1")
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Callable
from enum import Enum
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from powerbus.bus.kernel.errors import ConfigError, InvalidArgument
from powerbus.bus.kernel.identity import SPIFFE_PREFIX

__all__ = ["CA_CERT", "CA_KEY", "IdentityKind", "Issued", "init_ca", "issue"]

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
_CURVE = ec.SECP256R1()


class IdentityKind(str, Enum):
    """What a certificate is for: the first part of its identity name."""

    BUS = "bus"
    NODE = "node"
    CLIENT = "client"
    """An operator or script that only calls (``client/ops``)."""


class Issued:
    """Paths of an issued certificate and its key."""

    __slots__ = ("cert", "key", "name")

    def __init__(self, name: str, cert: Path, key: Path) -> None:
        self.name, self.cert, self.key = name, cert, key


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Created 0600 from the start, so the key is never readable by others, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, 0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def init_ca(directory: Path, *, days: int = 365, force: bool = False) -> Path:
    """Make a CA (``ca.pem``, ``ca.key``) in ``directory``; its certificate's path.

    An existing CA is kept unless ``force``: replacing it would orphan every issued
    certificate.
    """
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if cert_path.exists() and not force:
        raise ConfigError(f"{cert_path}: a CA exists already; --force replaces it")
    key = ec.generate_private_key(_CURVE)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "powerbus development CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    _write_cert(cert_path, cert)
    return cert_path


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except OSError as exc:
        raise ConfigError(
            f"{exc.filename}: cannot read the CA ({exc.strerror}); run `powerbus certs init` first"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{key_path}: not an EC key made by `powerbus certs init`")
    return cert, key


def _check_name(name: str) -> None:
    if not name or any(not (c.isalnum() or c in "-_.") for c in name):
        raise InvalidArgument("name", f"letters, digits, '-', '_' and '.' only, got {name!r}")


def issue(
    directory: Path,
    kind: IdentityKind,
    name: str,
    *,
    hosts: tuple[str, ...] = (),
    days: int = 90,
    out: Path | None = None,
) -> Issued:
    """Issue a certificate for ``kind/name`` signed by the CA in ``directory``.

    Written as ``<kind>-<name>.pem`` and ``.key`` in ``out`` (default ``directory``);
    an existing pair is replaced (that is how a certificate is rotated).
    """
    _check_name(name)
    ca_cert, ca_key = _load_ca(directory)
    identity = f"{kind.value}/{name}"
    key = ec.generate_private_key(_CURVE)
    now = datetime.datetime.now(datetime.timezone.utc)
    sans: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(SPIFFE_PREFIX + identity),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        # Python 3.13's default TLS context verifies strictly (VERIFY_X509_STRICT), which
        # refuses a leaf without the key identifiers that tie it to its issuer.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    target = out or directory
    target.mkdir(parents=True, exist_ok=True)
    stem = f"{kind.value}-{name}"
    cert_path, key_path = target / f"{stem}.pem", target / f"{stem}.key"
    # Key first, then certificate, each replaced atomically: a reader sees old or new
    # files, and a server reloading in between keeps its previous pair until both match.
    _replace(key_path, lambda p: _write_key(p, key))
    _replace(cert_path, lambda p: _write_cert(p, cert))
    return Issued(identity, cert_path, key_path)


def _replace(path: Path, write: Callable[[Path], None]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    write(temporary)
    os.replace(temporary, path)
