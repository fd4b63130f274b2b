"""Package layout: ``powerbus/`` at the repository root is the ``powerbus`` namespace.

It holds one committed symlink per code folder (``powerbus/bus -> ../bus``, ...; and
``powerbus/idl -> ../idl``, the IDL files nodes read at run time) and, git-ignored, the
generated protobuf/gRPC packages ``powerbus.<domain>.v1``. Python, mypy, pyright and
IDEs all resolve ``powerbus.bus.x`` through the link, so the editable install is a plain
path entry (the repository root) and ``mypy -p powerbus`` needs no import hook.

The packages are found by walking the links, so new subpackages of a folder need no
change here. The generated code is made by ``build_py`` with tools/codegen.py (the same
code ``make`` runs): into the build directory for a wheel, in place for an editable
install. All metadata lives in pyproject.toml.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
NAMESPACE = ROOT / "powerbus"

# Non-Python files shipped from every package directory: the files nodes read at run time.
PACKAGE_DATA = [
    "py.typed",
    "*.pyi",
    # configuration and reference data (tariffs, mappings, IDL, migrations)
    "*.toml",
    "*.csv",
    "*.json",
    "*.yaml",
    "*.yml",
    "*.idl",
    "*.ini",
    "*.mako",
    "*.sql",
    # the dashboard's static files
    "*.html",
    "*.css",
    "*.js",
    "*.svg",
    "*.png",
    "*.ico",
    "*.woff2",
]


def _codegen() -> ModuleType:
    """tools/codegen.py, loaded by path: the build runs with no source tree on sys.path."""
    spec = importlib.util.spec_from_file_location("_codegen", ROOT / "tools" / "codegen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _packages() -> list[str]:
    # The folders are the links in a checkout, plain folders in an sdist (which copies the
    # files through the links); generated packages beside them are made anew by build_py.
    generated = set(_codegen().domains(ROOT / "protos"))
    folders = sorted(
        p.name
        for p in NAMESPACE.iterdir()
        if p.is_dir() and p.name.isidentifier() and p.name not in generated
    )
    if not folders:
        raise SystemExit(
            "powerbus/ has no folder links: check out with symlinks (git config core.symlinks true)"
        )
    packages = ["powerbus"]  # a namespace: no __init__.py, but it makes the layout "simple"
    for name in folders:
        packages.append(f"powerbus.{name}")
        found = find_namespace_packages(str(NAMESPACE / name), exclude=["*__pycache__*"])
        packages += [f"powerbus.{name}.{p}" for p in found]
    return packages


class BuildPyWithProtos(build_py):
    """``build_py`` that also generates ``powerbus.<domain>.v1`` from protos/."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            # The editable install is a path entry to ROOT: generate where it looks.
            _codegen().generate(ROOT / "protos", ROOT, prune=True)
        else:
            _codegen().generate(ROOT / "protos", Path(self.build_lib))


setup(
    package_dir={"": "."},
    packages=_packages(),
    package_data={"": PACKAGE_DATA},
    exclude_package_data={"": ["__pycache__/*"]},
    zip_safe=False,
    cmdclass={"build_py": BuildPyWithProtos},
)
