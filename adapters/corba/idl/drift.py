"""Does the committed IDL still match what the protos generate?"""

from __future__ import annotations

import difflib
from pathlib import Path

from powerbus.adapters.corba.idl.generate import generate_idl
from powerbus.adapters.corba.idl.protoc import compile_protos

__all__ = ["check_idl", "idl_diff"]


def idl_diff(expected: str, idl_path: Path) -> str:
    """A unified diff from the file at ``idl_path`` to ``expected``; empty when they match.

    A missing file counts as empty, so the diff shows everything it should hold.

    >>> idl_diff("module m {};\\n", Path("/nonexistent.idl")).splitlines()[2:]
    ['@@ -0,0 +1 @@', '+module m {};']
    """
    idl_path = Path(idl_path)
    actual = idl_path.read_text(encoding="utf-8") if idl_path.exists() else ""
    if actual == expected:
        return ""
    lines = difflib.unified_diff(
        actual.splitlines(keepends=True),
        expected.splitlines(keepends=True),
        fromfile=f"{idl_path} (committed)",
        tofile=f"{idl_path} (generated from the protos)",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def check_idl(*, protos_dir: Path, idl_path: Path) -> str:
    """Generate from ``protos_dir`` and diff against ``idl_path`` (empty when in sync).

    >>> check_idl(protos_dir=Path("protos"), idl_path=Path("idl/powerbus.idl"))  # doctest: +SKIP
    ''
    """
    return idl_diff(generate_idl(compile_protos(protos_dir)), idl_path)
