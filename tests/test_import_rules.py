"""The import rules between the code folders, checked on the source (ast), and what
importing the SDK's client side costs.

Units, lowest first: ``load_balancer`` (pure logic), ``bus.kernel`` (the shared kernel),
``bus.transport`` (how calls reach nodes), then ``monitoring``, ``adapters`` and ``nodes``,
and the rest of ``bus`` (the server and the CLI) on top. A unit may import only the units
its row in ``ALLOWED`` names; generated code (``powerbus.<domain>.v1``) is open to all.
So nodes/, adapters/ and monitoring/ reach bus/ only through its kernel and transport,
load_balancer/ stays pure, and no two folders import each other.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("bus", "nodes", "load_balancer", "monitoring", "adapters")

ALLOWED: dict[str, frozenset[str]] = {
    "load_balancer": frozenset(),
    "bus.kernel": frozenset({"load_balancer"}),
    "bus.transport": frozenset({"bus.kernel", "load_balancer"}),
    "monitoring": frozenset({"bus.kernel", "bus.transport", "load_balancer"}),
    "adapters": frozenset({"bus.kernel", "load_balancer"}),
    "nodes": frozenset({"bus.kernel", "bus.transport", "load_balancer", "adapters"}),
    "bus": frozenset(
        {"bus.kernel", "bus.transport", "load_balancer", "monitoring", "adapters", "nodes"}
    ),
}
# What a unit imports from outside the standard library and powerbus, when it must not.
BANNED_LIBRARIES = {"load_balancer": ("grpc", "socket", "sqlalchemy", "zmq", "asyncio.streams")}


def unit_of(module: str) -> str | None:
    """``powerbus.bus.kernel.errors`` -> ``bus.kernel``; None outside the five folders."""
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != "powerbus" or parts[1] not in FOLDERS:
        return None
    if parts[1] == "bus" and len(parts) > 2 and parts[2] in ("kernel", "transport"):
        return f"bus.{parts[2]}"
    return parts[1]


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["powerbus", *parts])


def imports_of(root: Path, path: Path) -> Iterator[tuple[int, str]]:
    """Every module a source file imports (line, absolute name), function-level and
    ``TYPE_CHECKING`` imports included."""
    here = _module_name(root, path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            yield node.lineno, name
            for alias in node.names:  # `from powerbus.bus import kernel` names a module
                yield node.lineno, f"{name}.{alias.name}"


def violations(root: Path) -> list[str]:
    """Every import that breaks the rules, as ``file:line: unit imports target``."""
    found: list[str] = []
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*.py")):
            source_unit = unit_of(_module_name(root, path))
            assert source_unit is not None
            for line, target in imports_of(root, path):
                where = f"{path.relative_to(root)}:{line}"
                target_unit = unit_of(target)
                if target_unit not in (None, source_unit, *ALLOWED[source_unit]):
                    found.append(f"{where}: {source_unit} imports {target}")
                for banned in BANNED_LIBRARIES.get(source_unit, ()):
                    if target == banned or target.startswith(banned + "."):
                        found.append(f"{where}: {source_unit} imports {target}")
    return found


def unit_edges(root: Path) -> set[tuple[str, str]]:
    """Which unit imports which, as found in the source."""
    edges = set()
    for folder in FOLDERS:
        for path in (root / folder).rglob("*.py"):
            source = unit_of(_module_name(root, path))
            for _line, target in imports_of(root, path):
                target_unit = unit_of(target)
                if source and target_unit and target_unit != source:
                    edges.add((source, target_unit))
    return edges


def cycle_in(edges: set[tuple[str, str]]) -> list[str] | None:
    """One cycle of the graph, if it has any."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(unit: str) -> list[str] | None:
        state[unit] = 1
        path.append(unit)
        for nxt in sorted(graph.get(unit, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[unit] = 2
        return None

    for unit in sorted(graph):
        if unit not in state and (found := visit(unit)):
            return found
    return None


def test_folders_import_only_what_the_rules_allow():
    assert violations(ROOT) == []


def test_the_allowed_table_itself_has_no_cycle():
    allowed = {(a, b) for a, targets in ALLOWED.items() for b in targets}
    assert cycle_in(allowed) is None


def test_no_cycle_between_units():
    # bus.kernel and bus.transport are units of their own: the shared packages every
    # folder may use. The rest of bus/ (server, CLI) sits on top of everything.
    assert cycle_in(unit_edges(ROOT)) is None


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for folder in FOLDERS:
        (tmp_path / folder).mkdir()
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def test_a_forbidden_import_is_caught(tmp_path):
    root = _tree(
        tmp_path,
        {
            "nodes/sdk/proxyless.py": "from powerbus.bus.router.call import MethodRoute\n",
            "load_balancer/picker.py": "import grpc\n",
            "bus/kernel/errors.py": "from powerbus.monitoring import recorder\n",
            "monitoring/health.py": "from powerbus.bus.registry import NodeRecord\n",
            "adapters/bank/client.py": "from powerbus.bus.kernel.errors import PowerbusError\n",
        },
    )
    assert violations(root) == [
        "bus/kernel/errors.py:1: bus.kernel imports powerbus.monitoring",
        "bus/kernel/errors.py:1: bus.kernel imports powerbus.monitoring.recorder",
        "nodes/sdk/proxyless.py:1: nodes imports powerbus.bus.router.call",
        "nodes/sdk/proxyless.py:1: nodes imports powerbus.bus.router.call.MethodRoute",
        "load_balancer/picker.py:1: load_balancer imports grpc",
        "monitoring/health.py:1: monitoring imports powerbus.bus.registry",
        "monitoring/health.py:1: monitoring imports powerbus.bus.registry.NodeRecord",
    ]


def test_relative_and_lazy_imports_count_too(tmp_path):
    root = _tree(
        tmp_path,
        {
            "nodes/sdk/__init__.py": "",
            "nodes/sdk/feeds.py": "def f():\n    from ...bus import server\n",
        },
    )
    assert violations(root) == [
        "nodes/sdk/feeds.py:2: nodes imports powerbus.bus",
        "nodes/sdk/feeds.py:2: nodes imports powerbus.bus.server",
    ]


def test_a_cycle_between_units_is_found():
    assert cycle_in({("nodes", "bus"), ("bus", "nodes")}) in (
        ["bus", "nodes", "bus"],
        ["nodes", "bus", "nodes"],
    )


HEAVY = ("sqlalchemy", "alembic", "starlette", "uvicorn", "prometheus_client", "psycopg", "typer")


def test_the_sdk_client_side_imports_no_database_web_or_metrics_framework():
    probe = (
        "import sys\n"
        "import powerbus.nodes.sdk.proxyless, powerbus.nodes.sdk.channel, powerbus.nodes.sdk.node\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_the_tariff_engine_needs_no_grpc_protobuf_or_database():
    probe = (
        "import sys\n"
        "import powerbus.nodes.billing.tariff\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'grpc', 'sqlalchemy'}),"
        " 'google.protobuf' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[] False", out.stdout
