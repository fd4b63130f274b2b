"""The package layout: ``powerbus/`` links the top-level folders into one namespace, beside
the generated proto packages (see setup.py)."""

from __future__ import annotations

import ast
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"bus", "nodes", "load_balancer", "monitoring", "adapters"}
# Linked into powerbus/ too: data the nodes read at run time (powerbus.idl).
DATA = {"idl"}


def test_no_proto_package_shadows_a_folder():
    # protos/powerbus/<domain> becomes powerbus.<domain>; a domain named like a linked
    # folder would hide that folder's package.
    domains = {p.name for p in (ROOT / "protos" / "powerbus").iterdir() if p.is_dir()}
    clashes = domains & (FOLDERS | DATA)
    assert not clashes, f"proto domains clash with folders: {sorted(clashes)}"


def test_every_card_folder_exists():
    expected = FOLDERS | {"idl", "protos", "tests", "docker", "benchmarks", "docs"}
    assert all((ROOT / name).is_dir() for name in expected)


def test_the_namespace_links_every_folder_and_nothing_else_is_committed():
    namespace = ROOT / "powerbus"
    links = {p.name: os.readlink(p) for p in namespace.iterdir() if p.is_symlink()}
    assert links == {name: f"../{name}" for name in FOLDERS | DATA}
    if (ROOT / ".git").exists():
        tracked = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "powerbus"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert sorted(tracked) == sorted(f"powerbus/{name}" for name in links)


def folder_imports(path: Path) -> list[str]:
    """Absolute imports in ``path`` that name a linked folder at the top level."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return [n for n in names if n.partition(".")[0] in FOLDERS | DATA]


def test_code_imports_the_folders_only_as_powerbus_subpackages():
    # The checkout is on sys.path in development, so `import bus.x` would work there, load
    # a second copy of the module, and fail from an installed wheel.
    roots = [*(ROOT / f for f in sorted(FOLDERS)), ROOT / "tests", ROOT / "benchmarks"]
    wrong = {
        str(path.relative_to(ROOT)): found
        for root in roots
        for path in sorted(root.rglob("*.py"))
        if (found := folder_imports(path))
    }
    assert wrong == {}, "import powerbus.<folder> instead"


def test_no_test_imports_a_conftest_by_name():
    # Every folder's conftest is a module named "conftest": importing one by name gets
    # whichever was loaded last when folders run together. Shared helpers go in a
    # <folder>_support module.
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "tests").rglob("*.py")
        if path != Path(__file__).resolve()
        and any(
            line.startswith(("from conftest import", "import conftest"))
            for line in path.read_text(encoding="utf-8").splitlines()
        )
    ]
    assert offenders == []
