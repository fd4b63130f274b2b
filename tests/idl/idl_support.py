"""What the IDL tests share besides fixtures: repository paths, omniidl, a clean stub
importer."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROTOS = REPO / "protos"
COMMITTED_IDL = REPO / "idl" / "powerbus.idl"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
OMNIIDL = Path(sys.executable).parent / "omniidl"
TIMEOUT = 120.0


def omniidl(idl: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """Compile ``idl`` to Python stubs under ``out`` with omniidl's python back end."""
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [str(OMNIIDL), "-bpython", f"-C{out}", str(idl)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def run_with_stubs(stubs: Path, script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a fresh interpreter that sees the stubs and omniORB, nothing else.

    The stubs define a top-level ``powerbus`` package, which would shadow ours: ``-S``
    keeps site-packages' .pth files (our editable install's import hook) from loading,
    and only omniORB's directory is added back, after the stubs.
    """
    spec = importlib.util.find_spec("omniORB")
    assert spec is not None and spec.origin is not None
    omniorb_root = Path(spec.origin).parent.parent
    prelude = textwrap.dedent(
        f"""
        import sys
        sys.path[:0] = [{str(stubs)!r}, {str(omniorb_root)!r}]
        import powerbus
        assert powerbus.__file__.startswith({str(stubs)!r}), powerbus.__file__
        from omniORB import CORBA
        orb = CORBA.ORB_init(["-ORBendPoint", "giop:tcp:127.0.0.1:"], CORBA.ORB_ID)
        """
    )
    return subprocess.run(
        [sys.executable, "-S", "-c", prelude + textwrap.dedent(script) + "\norb.destroy()\n"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        cwd=stubs,
    )
