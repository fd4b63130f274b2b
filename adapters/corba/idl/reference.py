"""The other side of a compatibility check: protos at a git ref, in a folder, or in a file.

``REF`` is read as, in this order:

1. a file holding a serialized ``FileDescriptorSet`` (``protoc --include_imports
   --descriptor_set_out=FILE``, ``buf build -o FILE.binpb``);
2. a folder: an import root of ``.proto`` files;
3. a git revision (``HEAD~1``, ``main``, a tag, a commit): the protos folder as that
   commit had it.

>>> old = load_reference("HEAD~1", protos_dir=Path("protos"))  # doctest: +SKIP
>>> len(old.file) > 0  # doctest: +SKIP
True
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from pathlib import Path

from google.protobuf.descriptor_pb2 import FileDescriptorSet
from google.protobuf.message import DecodeError

from powerbus.adapters.corba.idl.protoc import compile_protos
from powerbus.bus.kernel.errors import InvalidArgument, NotFound

__all__ = ["git_revision_exists", "load_reference"]

_GIT_TIMEOUT_S = 60.0


def load_reference(ref: str, *, protos_dir: Path) -> FileDescriptorSet:
    """The descriptors of ``ref``; ``protos_dir`` says where the protos live in the repo.

    Raises :class:`NotFound` for a revision git does not know, :class:`InvalidArgument`
    for a file that is no descriptor set or protos that do not compile.
    """
    path = Path(ref)
    if path.is_file():
        return _read_descriptor_set(path)
    if path.is_dir():
        return compile_protos(path)
    return _protos_at_revision(ref, Path(protos_dir))


def git_revision_exists(revision: str, *, cwd: Path) -> bool:
    """Whether ``revision`` names a commit of the repository around ``cwd``."""
    done = _git(["rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"], cwd=cwd)
    return done.returncode == 0


def _read_descriptor_set(path: Path) -> FileDescriptorSet:
    try:
        descriptors = FileDescriptorSet.FromString(path.read_bytes())
    except DecodeError as exc:
        raise InvalidArgument("against", f"{path} is not a serialized FileDescriptorSet") from exc
    if not descriptors.file:
        raise InvalidArgument("against", f"{path} holds no proto files")
    return descriptors


def _protos_at_revision(revision: str, protos_dir: Path) -> FileDescriptorSet:
    protos_dir = protos_dir.resolve()
    top = _git(["rev-parse", "--show-toplevel"], cwd=protos_dir)
    if top.returncode != 0:
        raise InvalidArgument(
            "against", f"{revision!r} is no file or folder, and {protos_dir} is not in a git repo"
        )
    root = Path(top.stdout.decode().strip())
    if not git_revision_exists(revision, cwd=root):
        raise NotFound(f"against: git knows no commit {revision!r}")
    inside = protos_dir.relative_to(root).as_posix()
    archive = _git(["archive", "--format=tar", revision, "--", inside], cwd=root)
    if archive.returncode != 0:
        raise NotFound(f"against: {revision} has no {inside}/: {archive.stderr.decode().strip()}")
    with tempfile.TemporaryDirectory(prefix="powerbus-compat-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
                tar.extractall(tmp, filter="data")
            else:  # pragma: no cover - git archive of our own repo holds only plain files
                tar.extractall(tmp)
        return compile_protos(Path(tmp) / inside)


def _git(args: list[str], *, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, timeout=_GIT_TIMEOUT_S, check=False
        )
    except FileNotFoundError:
        raise InvalidArgument("against", "git is not installed") from None
    except subprocess.TimeoutExpired:
        raise InvalidArgument("against", f"git {args[0]} took over {_GIT_TIMEOUT_S:.0f}s") from None
