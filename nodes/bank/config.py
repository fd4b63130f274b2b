"""Settings of a bank node: ``[bank]`` in the TOML file, or flags.

>>> from powerbus.bus.kernel.config import resolve
>>> s = resolve(BankSettings, flags={"bank": "0102", "bank_address": "127.0.0.1:9200"}, env={})
>>> (s.bank, str(s.listen_bank), s.key) == ("0102", "127.0.0.1:0", demo_key("0102"))
True
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from powerbus.adapters.bank.sim.settings import demo_key
from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.errors import ConfigError

__all__ = ["BankSettings", "demo_key"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class BankSettings:
    """``powerbus node bank --bank CODE --listen-bank HOST:PORT --bank-address HOST:PORT
    [--key-hex HEX]``: one node per bank."""

    section = "bank"

    bank: str = ""
    """The bank's code (e.g. 0102): the MAC key, the statements and the payments' bank."""
    listen_bank: HostPort = HostPort("127.0.0.1", 0)
    """Where the bank dials in (查询欠费, 缴费, 冲正, status); port 0 picks one, registered
    in the node's metadata as ``bank_listen``."""
    bank_address: HostPort | None = None
    """The bank's own server (status queries, statement download)."""
    key_hex: str = ""
    """The MAC key shared with the bank, hex; default the demo key of the bank code."""
    call_timeout: timedelta = timedelta(seconds=5)
    """Deadline of each call to Payments and Billing through the bus."""
    bank_timeout: timedelta = timedelta(seconds=10)
    """Deadline of each call to the bank."""
    concurrency: int = 16
    """Requests of one bank connection answered at once."""

    def __post_init__(self) -> None:
        if not (len(self.bank) == 4 and self.bank.isdigit()):
            raise ConfigError(f"bank: a 4-digit bank code is required, got {self.bank!r}")
        if self.bank_address is None:
            raise ConfigError("bank_address: required (HOST:PORT of the bank's server)")
        try:
            bytes.fromhex(self.key_hex)
        except ValueError:
            raise ConfigError("key_hex: not hexadecimal") from None
        if self.concurrency < 1:
            raise ConfigError(f"concurrency: must be at least 1, got {self.concurrency}")

    @property
    def key(self) -> bytes:
        return bytes.fromhex(self.key_hex) if self.key_hex else demo_key(self.bank)
