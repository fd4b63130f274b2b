"""omniORBpy stubs compiled from IDL at run time, inside a package of their own.

omniidl's Python stubs of ``idl/powerbus.idl`` define a top-level ``powerbus`` module,
which would shadow our own namespace. :func:`load_stubs` therefore compiles with
``-Wbpackage=_pbcorba_<hash>`` into a cache folder and imports them from there: the same
IDL text always gives the same package, so a second process reuses the first one's
stubs, and nothing named plain ``powerbus`` is ever imported.

>>> stubs = load_stubs(Path("idl/legacy/LegacyCIS.idl"))  # doctest: +SKIP
>>> stubs.skeleton("::LegacyCIS::CustomerService")  # doctest: +SKIP
<class '_pbcorba_....LegacyCIS__POA.CustomerService'>
"""

from __future__ import annotations

import hashlib
import importlib
import keyword
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from powerbus.adapters.corba.ior import repository_id
from powerbus.bus.kernel.errors import ConfigError, InvalidArgument

__all__ = ["CACHE_ENV", "Stubs", "load_stubs", "omniidl_command", "python_name"]

CACHE_ENV = "POWERBUS_CORBA_STUBS"
"""Environment variable naming the stub cache folder (default ~/.cache/powerbus/corba)."""

_TIMEOUT_S = 120.0
_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Stubs:
    """Imported stubs of one IDL file: look up types, skeletons and exceptions by IDL name."""

    package: str
    """The Python package that holds them (``_pbcorba_<hash>``)."""
    modules: tuple[str, ...]
    """The Python modules of the IDL's top-level modules, e.g. ``_pbcorba_x.powerbus``."""

    def descriptor(self, scoped_name: str) -> Any:
        """The omniORB type descriptor of a struct, union, enum, exception or interface."""
        import omniORB

        descriptor = omniORB.findType(repository_id(scoped_name))
        if descriptor is None:
            raise InvalidArgument("idl", f"the IDL declares no {scoped_name}")
        return descriptor

    def type_code(self, scoped_name: str) -> Any:
        import omniORB

        return omniORB.findTypeCode(repository_id(scoped_name))

    def skeleton(self, scoped_name: str) -> type:
        """The POA skeleton class servants of interface ``scoped_name`` derive from."""
        import omniORB

        skeleton = omniORB.skeletonMapping.get(repository_id(scoped_name))
        if skeleton is None:
            raise InvalidArgument("idl", f"the IDL declares no interface {scoped_name}")
        return skeleton  # type: ignore[no-any-return]

    def objref(self, scoped_name: str) -> type:
        """The object reference class (what ``_narrow`` takes) of an interface."""
        interface: type = self.attribute(scoped_name)
        return interface

    def attribute(self, scoped_name: str) -> Any:
        """Any declaration by scoped name, as the stubs' Python modules hold it."""
        parts = [python_name(part) for part in scoped_name.strip(":").split("::")]
        try:  # an IDL module is a Python module of the stubs
            return importlib.import_module(".".join((self.package, *parts)))
        except ImportError:
            module = importlib.import_module(".".join((self.package, *parts[:-1])))
            return getattr(module, parts[-1])


def omniidl_command() -> list[str]:
    """How to run omniidl: the script installed beside this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "omniidl"
    found = str(beside) if beside.exists() else shutil.which("omniidl")
    if found is None:
        raise ConfigError("omniidl not found: pip install jeteve-omniorb")
    return [found]


def load_stubs(idl: Path, *, cache_dir: Path | None = None) -> Stubs:
    """Compile ``idl`` (once per content) and import its stubs; the ORB need not run.

    Files the IDL ``#include``\\ s are looked up beside it.
    """
    idl = Path(idl).resolve()
    try:
        text = idl.read_bytes()
    except OSError as exc:
        raise ConfigError(f"idl: cannot read {idl}: {exc.strerror}") from None
    digest = hashlib.sha256(text + idl.name.encode()).hexdigest()[:16]
    package = f"_pbcorba_{digest}"
    root = Path(cache_dir or _default_cache()) / package
    with _lock:
        if not (root / package / "__init__.py").exists():
            _compile(idl, package=package, into=root)
        if str(root) not in sys.path:
            sys.path.append(str(root))
        importlib.invalidate_caches()
        generated = importlib.import_module(f"{package}.{idl.stem.replace('.', '_')}_idl")
    return Stubs(package=package, modules=tuple(getattr(generated, "_exported_modules", ())))


def _default_cache() -> Path:
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "powerbus" / "corba"


def _compile(idl: Path, *, package: str, into: Path) -> None:
    into.parent.mkdir(parents=True, exist_ok=True)
    # Compiled beside the cache, then renamed: another process compiling the same IDL at
    # the same time gets the same bytes, and a reader never sees half a package.
    work = Path(tempfile.mkdtemp(prefix=f".{package}.", dir=into.parent))
    try:
        command = [
            *omniidl_command(),
            "-bpython",
            f"-Wbpackage={package}",
            f"-I{idl.parent}",
            f"-C{work}",
            str(idl),
        ]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            raise ConfigError(f"idl: omniidl took over {_TIMEOUT_S:.0f}s on {idl}") from None
        if done.returncode != 0:
            raise InvalidArgument("idl", f"omniidl failed on {idl}:\n{done.stderr.strip()}")
        try:
            os.rename(work, into)
        except OSError:
            if not (into / package / "__init__.py").exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def python_name(name: str) -> str:
    """The Python name omniidl gives an IDL identifier: keywords get a leading underscore.

    >>> python_name("from"), python_name("Echo_")
    ('_from', 'Echo_')
    """
    if keyword.iskeyword(name):
        return "_" + name
    return "_None" if name == "None" else name
