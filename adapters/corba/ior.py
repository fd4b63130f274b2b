"""Interoperable Object References: what an ``IOR:...`` string says, and IOR files.

An IOR is a hex-encoded CDR encapsulation: the object's repository id and its profiles.
The IIOP profile says where the object listens, which is how a server bound to port 0
learns the port it got, and how a person reading an IOR file learns where it points.

>>> ref = parse_ior(ECHO_IOR)  # doctest: +SKIP
>>> (ref.type_id, str(ref.address))  # doctest: +SKIP
('IDL:powerbus/echo/v1/Echo:1.0', '127.0.0.1:40123')

An IOR file written by the gateway or the simulator is a JSON object mapping each
interface's repository id to its IOR; a file holding one bare ``IOR:...`` is read too.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.errors import InvalidArgument, NotFound
from powerbus.bus.kernel.statefile import write_state_file

__all__ = ["ObjectRef", "parse_ior", "read_ior_file", "repository_id", "write_ior_file"]

_TAG_INTERNET_IOP = 0


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """The parts of an IOR that people and tests care about."""

    type_id: str
    address: HostPort
    object_key: bytes


def repository_id(scoped_name: str, *, version: str = "1.0") -> str:
    """The repository id of an IDL scoped name.

    >>> repository_id("::powerbus::echo::v1::Echo")
    'IDL:powerbus/echo/v1/Echo:1.0'
    """
    return f"IDL:{scoped_name.strip(':').replace('::', '/')}:{version}"


def parse_ior(ior: str) -> ObjectRef:
    """Decode an ``IOR:`` string; :class:`InvalidArgument` when it is not one with IIOP."""
    text = ior.strip()
    if not text.upper().startswith("IOR:"):
        raise InvalidArgument("ior", f"not an IOR: {text[:20]!r}")
    try:
        reader = _Cdr(bytes.fromhex(text[4:]))
        type_id = reader.string()
        for _ in range(reader.ulong()):
            tag, body = reader.ulong(), reader.octets()
            if tag == _TAG_INTERNET_IOP:
                profile = _Cdr(body)
                profile.skip(2)  # IIOP version
                host = profile.string()
                port = profile.ushort()
                return ObjectRef(type_id, HostPort(host, port), profile.octets())
    except (ValueError, struct.error, IndexError) as exc:
        raise InvalidArgument("ior", f"malformed IOR: {exc}") from None
    raise InvalidArgument("ior", "the IOR has no IIOP profile")


def write_ior_file(path: Path, iors: Mapping[str, str]) -> None:
    """Atomically write ``{repository id: IOR}`` as JSON."""
    write_state_file(path, dict(iors))


def read_ior_file(path: Path, repository_id: str | None = None) -> str:
    """The IOR for ``repository_id`` from an IOR file (JSON, or one bare IOR).

    With ``repository_id`` None the file must hold exactly one IOR.
    """
    text = Path(path).read_text(encoding="utf-8").strip()
    if text.upper().startswith("IOR:"):
        return text
    try:
        iors = json.loads(text)
    except json.JSONDecodeError:
        raise InvalidArgument("ior_file", f"{path}: neither an IOR nor a JSON object") from None
    if not isinstance(iors, dict):
        raise InvalidArgument("ior_file", f"{path}: not a JSON object")
    if repository_id is None:
        if len(iors) != 1:
            raise InvalidArgument("ior_file", f"{path}: holds {len(iors)} IORs; say which")
        return str(next(iter(iors.values())))
    try:
        return str(iors[repository_id])
    except KeyError:
        raise NotFound(f"{path} has no IOR for {repository_id}") from None


class _Cdr:
    """Reads a CDR encapsulation: the first octet gives the byte order."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._order = "<" if data[0] & 1 else ">"
        self._at = 1

    def _align(self, size: int) -> None:
        self._at += -self._at % size

    def skip(self, count: int) -> None:
        self._at += count

    def ulong(self) -> int:
        self._align(4)
        (value,) = struct.unpack_from(self._order + "I", self._data, self._at)
        self._at += 4
        return int(value)

    def ushort(self) -> int:
        self._align(2)
        (value,) = struct.unpack_from(self._order + "H", self._data, self._at)
        self._at += 2
        return int(value)

    def octets(self) -> bytes:
        size = self.ulong()
        if self._at + size > len(self._data):
            raise ValueError("sequence runs past the end")
        value = self._data[self._at : self._at + size]
        self._at += size
        return value

    def string(self) -> str:
        return self.octets().rstrip(b"\0").decode("latin-1")
