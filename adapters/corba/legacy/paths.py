"""Where the legacy IDLs and their mappings are: ``legacy/`` of the ``powerbus.idl`` package.

``powerbus.idl`` is the repository's ``idl/`` folder: in a checkout ``powerbus/idl`` is a
link to it (the editable install puts the checkout on the path), in an installed wheel its
files are package data. So one lookup finds ``LegacyCIS.idl`` and its mapping in both, from
any working directory; another copy is given explicitly with ``--idl`` / ``--mapping``.

>>> legacy_file("LegacyCIS.idl").name
'LegacyCIS.idl'
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from powerbus.bus.kernel.errors import ConfigError

__all__ = ["legacy_dirs", "legacy_file"]

_PACKAGE = "powerbus.idl"


def legacy_dirs() -> list[Path]:
    """The folders searched, in order: ``legacy/`` in each directory of ``powerbus.idl``."""
    spec = importlib.util.find_spec(_PACKAGE)
    locations = (spec.submodule_search_locations if spec else None) or []
    return [Path(location) / "legacy" for location in locations]


def legacy_file(name: str) -> Path:
    """``idl/legacy/<name>``; :class:`ConfigError` listing where it was looked for."""
    for folder in legacy_dirs():
        if (folder / name).is_file():
            return folder / name
    looked = ", ".join(str(d) for d in legacy_dirs()) or f"nowhere ({_PACKAGE} is not installed)"
    raise ConfigError(f"{name} not found in {looked}; give its path")
