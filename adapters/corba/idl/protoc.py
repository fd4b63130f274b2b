"""Compile a tree of .proto files into a FileDescriptorSet with grpc_tools' protoc."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

from google.protobuf.descriptor_pb2 import FileDescriptorSet

from powerbus.bus.kernel.errors import ConfigError, InvalidArgument

__all__ = ["compile_protos"]

_TIMEOUT_SECONDS = 120.0


def compile_protos(protos_dir: Path) -> FileDescriptorSet:
    """Every ``*.proto`` under ``protos_dir`` and all it imports, as one descriptor set.

    ``protos_dir`` is the import root (``protos/`` holds ``powerbus/echo/v1/echo.proto``);
    the google well-known types come from grpc_tools' bundled includes. A proto that does
    not compile raises ``InvalidArgument("protos", <protoc's messages>)``.

    >>> fds = compile_protos(Path("protos"))  # doctest: +SKIP
    >>> sorted(f.name for f in fds.file)[:1]  # doctest: +SKIP
    ['google/protobuf/duration.proto']
    """
    protos_dir = Path(protos_dir).resolve()
    if not protos_dir.is_dir():
        raise InvalidArgument("protos", f"not a directory: {protos_dir}")
    sources = sorted(p.relative_to(protos_dir).as_posix() for p in protos_dir.rglob("*.proto"))
    if not sources:
        raise InvalidArgument("protos", f"no .proto files under {protos_dir}")
    include = _well_known_include()
    with tempfile.TemporaryDirectory(prefix="powerbus-idl-") as tmp:
        out = Path(tmp) / "protos.pb"
        # A child process, so protoc's diagnostics (written by C++ to fd 2) can be captured.
        command = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--proto_path={protos_dir}",
            f"--proto_path={include}",
            f"--descriptor_set_out={out}",
            "--include_imports",
            *sources,
        ]
        try:
            # Sources are named relative to the import root, so run from there: a file of
            # the same name under the caller's directory must not shadow them.
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=_TIMEOUT_SECONDS,
                check=False,
                cwd=protos_dir,
            )
        except subprocess.TimeoutExpired as exc:
            raise InvalidArgument("protos", f"protoc took over {_TIMEOUT_SECONDS:.0f}s") from exc
        if done.returncode != 0:
            problem = (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"
            raise InvalidArgument("protos", f"protoc failed:\n{problem}")
        return FileDescriptorSet.FromString(out.read_bytes())


def _well_known_include() -> Path:
    # Looked up, not imported at module level: only the idl commands need grpcio-tools.
    spec = importlib.util.find_spec("grpc_tools")
    if spec is None or spec.origin is None:
        raise ConfigError("grpcio-tools is not installed: pip install grpcio-tools")
    return Path(spec.origin).parent / "_proto"
