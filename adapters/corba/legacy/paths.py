"""Where the legacy IDLs and their mappings are: ``idl/legacy/`` of the checkout.

Looked for under the working directory first, then beside the source tree this package
was installed from (an editable install); an installed wheel has no ``idl/`` folder, so
its users pass ``--idl`` / ``--mapping`` paths.

>>> legacy_file("LegacyCIS.idl").name
'LegacyCIS.idl'
"""

from __future__ import annotations

from pathlib import Path

from powerbus.bus.kernel.errors import ConfigError

__all__ = ["legacy_dirs", "legacy_file"]


def legacy_dirs() -> list[Path]:
    """The folders searched, in order."""
    source_tree = Path(__file__).resolve().parents[3]
    return [Path.cwd() / "idl" / "legacy", source_tree / "idl" / "legacy"]


def legacy_file(name: str) -> Path:
    """``idl/legacy/<name>``; :class:`ConfigError` listing where it was looked for."""
    for folder in legacy_dirs():
        if (folder / name).is_file():
            return folder / name
    looked = ", ".join(str(d) for d in legacy_dirs())
    raise ConfigError(f"{name} not found in {looked}; give its path")
