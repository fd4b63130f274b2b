"""Generate the protobuf/gRPC code (``powerbus.<domain>.v1``) from ``protos/``.

The one code path for both callers:

- ``make`` (development) runs ``python tools/codegen.py``, which writes the packages in
  place into the repository's ``powerbus/`` directory (git-ignored beside the committed
  folder links), so a new proto domain is importable after ``make`` alone;
- ``setup.py``'s ``build_py`` imports this file and writes them into the wheel's build
  directory (or in place, for an editable install).

grpc_tools.protoc writes the messages and services, mypy-protobuf's two plugins their
type stubs; every generated package gets a ``py.typed``. Output goes to a temporary
directory first and replaces the old packages only after protoc succeeded, so a failed
run leaves the previous tree working.

    python tools/codegen.py                    # protos/ -> ./powerbus/<domain>/...
    python tools/codegen.py --out build/x      # protos/ -> build/x/powerbus/<domain>/...
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

NAMESPACE = "powerbus"
_PLUGINS = {"protoc-gen-mypy": "main", "protoc-gen-mypy_grpc": "grpc"}


def proto_files(protos: Path) -> list[Path]:
    """Every ``.proto`` under ``protos/``, relative to it, in a stable order."""
    return sorted(p.relative_to(protos) for p in protos.rglob("*.proto"))


def domains(protos: Path) -> list[str]:
    """The top-level generated packages: ``protos/powerbus/<domain>/`` -> ``<domain>``."""
    return sorted({p.parts[1] for p in proto_files(protos) if p.parts[0] == NAMESPACE})


def generate(protos: Path, out: Path, *, prune: bool = False) -> list[str]:
    """Write ``out/powerbus/<domain>/...`` for every domain of ``protos``; return the domains.

    An existing generated package of the same name is replaced. A symlink in
    ``out/powerbus`` (a code folder) is never touched, and a domain named like one is an
    error. With ``prune``, every other non-link entry of ``out/powerbus`` goes too (a domain
    whose protos were removed): use it only where ``out/powerbus`` holds nothing but links
    and generated code, as the repository's ``powerbus/`` does.
    """
    files = proto_files(protos)
    if not files:
        raise SystemExit(f"codegen: no .proto files under {protos}")
    target = out / NAMESPACE
    produced = domains(protos)
    clashes = [d for d in produced if (target / d).is_symlink()]
    if clashes:
        raise SystemExit(f"codegen: proto domains {clashes} would hide the code folders")
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".codegen-", dir=target) as tmp:
        scratch = Path(tmp)
        _protoc(protos, files, scratch)
        for directory in (scratch / NAMESPACE).rglob("*"):
            if directory.is_dir():
                (directory / "py.typed").touch()
        if prune:
            for entry in target.iterdir():
                if not entry.is_symlink() and entry.name != scratch.name:
                    _remove(entry)
        for domain in produced:
            _remove(target / domain)
            (scratch / NAMESPACE / domain).rename(target / domain)
    return produced


def _protoc(protos: Path, files: list[Path], out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="powerbus-plugins-") as bin_dir:
        plugins = [f"--plugin={name}={_plugin(Path(bin_dir), name)}" for name in _PLUGINS]
        command = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{protos}",
            *plugins,
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            f"--mypy_out={out}",
            f"--mypy_grpc_out={out}",
            *(str(f) for f in files),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"codegen: protoc failed:\n{done.stderr.strip()}")


def _plugin(bin_dir: Path, name: str) -> Path:
    """A protoc plugin that runs mypy-protobuf under this interpreter.

    Not the ``protoc-gen-mypy`` console script: where pip puts it differs between a venv,
    an isolated build environment and ``--no-build-isolation``; this interpreter is the
    one that has mypy_protobuf, wherever it was installed.
    """
    script = bin_dir / name
    function = _PLUGINS[name]
    script.write_text(
        f"#!/bin/sh\nexec '{sys.executable}' -c "
        f"'from mypy_protobuf.main import {function}; {function}()' \"$@\"\n",
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def main(argv: list[str] | None = None) -> None:
    root = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description="Generate powerbus.<domain>.v1 from protos/.")
    parser.add_argument("--protos", type=Path, default=root / "protos")
    parser.add_argument(
        "--out",
        type=Path,
        default=root,
        help="directory that receives powerbus/<domain>/ (default: the repository, in place)",
    )
    args = parser.parse_args(argv)
    prune = args.out.resolve() == root
    produced = generate(args.protos, args.out, prune=prune)
    print(f"codegen: {len(produced)} domains -> {os.path.relpath(args.out / NAMESPACE)}")


if __name__ == "__main__":
    main()
