"""Settings of the CORBA gateway beyond those of every node: ``[corba_gateway]`` in TOML.

>>> from powerbus.bus.kernel.config import resolve
>>> settings = resolve(GatewaySettings, flags={"naming": "corbaloc::127.0.0.1:2809/NameService"},
...                    env={})
>>> (str(settings.iiop), settings.naming_prefix)
('127.0.0.1:0', '')
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.errors import ConfigError

__all__ = ["GatewaySettings"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class GatewaySettings:
    """``powerbus node corba-gateway ... [--iiop HOST:PORT] [--ior-file PATH] [--naming URL]``."""

    section = "corba_gateway"

    iiop: HostPort = HostPort("127.0.0.1", 0)
    """Where CORBA clients connect (IIOP); port 0 picks one."""
    ior_file: Path | None = None
    """Written once serving: a JSON object mapping each interface's repository id to its IOR."""
    naming: str | None = None
    """A naming service (``corbaloc::HOST:PORT/NameService``) to bind every interface in."""
    naming_prefix: str = ""
    """Path of contexts to bind under; interfaces go at ``<prefix>/powerbus/echo/v1/Echo``."""
    corba_timeout: timedelta = timedelta(seconds=10)
    """Longest wait of the gateway's own CORBA calls (the naming service)."""
    report_interval: timedelta = timedelta(seconds=1)
    """How often IIOP traffic is reported to the bus."""
    stubs_dir: Path | None = None
    """Where compiled omniORBpy stubs are cached (default ~/.cache/powerbus/corba)."""

    def __post_init__(self) -> None:
        for name in ("corba_timeout", "report_interval"):
            if getattr(self, name) <= timedelta(0):
                raise ConfigError(f"{name}: must be positive")
        if self.naming is not None and not self.naming.strip():
            raise ConfigError("naming: empty; give corbaloc::HOST:PORT/NameService")
