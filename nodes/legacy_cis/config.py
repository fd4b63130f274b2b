"""Settings of the legacy CIS adapter node beyond those of every node: ``[legacy_cis]``.

>>> from powerbus.bus.kernel.config import resolve
>>> resolve(LegacySettings, flags={"ior_file": "cis.json"}, env={}).legacy_timeout.total_seconds()
10.0
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

from powerbus.bus.kernel.errors import ConfigError

__all__ = ["LegacySettings"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class LegacySettings:
    """``powerbus node legacy-cis ... (--ior-file PATH | --naming URL [--name PATH])``."""

    section = "legacy_cis"

    ior_file: Path | None = None
    """The legacy CIS's IOR file (JSON by repository id, or one bare IOR)."""
    naming: str | None = None
    """A naming service holding the CIS: ``corbaloc::HOST:PORT/NameService``."""
    name: str = ""
    """Its name there; empty takes the mapping's ``[service] naming``."""
    mapping: Path | None = None
    """The mapping file; default ``idl/legacy/LegacyCIS.crm.toml``."""
    legacy_timeout: timedelta = timedelta(seconds=10)
    """Longest wait for the CIS, shortened to the caller's deadline."""
    workers: int = 8
    """Legacy calls in progress at once (each holds a thread while the CIS works)."""
    stubs_dir: Path | None = None
    """Where compiled omniORBpy stubs are cached (default ~/.cache/powerbus/corba)."""

    def __post_init__(self) -> None:
        if (self.ior_file is None) == (self.naming is None):
            raise ConfigError("legacy-cis: give exactly one of --ior-file and --naming")
        if self.legacy_timeout <= timedelta(0):
            raise ConfigError("legacy_timeout: must be positive (omniORB would wait forever)")
        if self.workers < 1:
            raise ConfigError(f"workers: must be at least 1, got {self.workers}")
