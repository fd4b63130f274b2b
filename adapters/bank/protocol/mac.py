"""Message authentication: HMAC-SHA256 under a key per bank, 32 hex characters on the wire.

Real 代收 interfaces use a MAC (often DES/SM4-based) over the message with a key the bank
and the utility exchanged; HMAC-SHA256 from the standard library plays that part here.

>>> keys = KeyRing({"0102": b"secret"})
>>> mac = keys.sign("0102", b"payload")
>>> len(mac), keys.verify("0102", b"payload", mac)
(32, True)
>>> keys.verify("0102", b"payload!", mac)
False
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from powerbus.bus.kernel.errors import InvalidArgument

__all__ = ["MAC_SIZE", "KeyRing"]

MAC_SIZE = 32


class KeyRing:
    """The MAC keys of the banks one side talks to, by bank code."""

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        if not keys:
            raise InvalidArgument("keys", "at least one bank key is needed")
        self._keys = dict(keys)

    def __contains__(self, bank_code: object) -> bool:
        return bank_code in self._keys

    def sign(self, bank_code: str, data: bytes) -> bytes:
        """The MAC of ``data`` under ``bank_code``'s key, as ASCII hex."""
        key = self._keys.get(bank_code)
        if key is None:
            raise InvalidArgument("bank_code", f"no MAC key for bank {bank_code!r}")
        return hmac.new(key, data, hashlib.sha256).hexdigest()[:MAC_SIZE].encode("ascii")

    def verify(self, bank_code: str, data: bytes, mac: bytes) -> bool:
        """Whether ``mac`` is ``data``'s MAC; an unknown bank never verifies."""
        if bank_code not in self._keys:
            return False
        return hmac.compare_digest(self.sign(bank_code, data), mac)
