"""The package layout: top-level folders and generated proto packages share one namespace."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"bus", "nodes", "load_balancer", "monitoring", "adapters"}


def test_no_proto_package_shadows_a_folder():
    # protos/powerbus/<domain> becomes powerbus.<domain>; a domain named like a folder
    # would hide that folder's package.
    domains = {p.name for p in (ROOT / "protos" / "powerbus").iterdir() if p.is_dir()}
    assert not domains & FOLDERS, f"proto domains clash with folders: {sorted(domains & FOLDERS)}"


def test_every_card_folder_exists():
    expected = FOLDERS | {"idl", "protos", "tests", "docker", "benchmarks", "docs"}
    assert all((ROOT / name).is_dir() for name in expected)
