"""Every ``>>>`` example in a public docstring runs, so documentation cannot rot."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import powerbus.bus
import powerbus.load_balancer
import powerbus.nodes

PACKAGES = (powerbus.bus, powerbus.load_balancer, powerbus.nodes)
# Modules whose import has side effects (the CLI entry point runs the CLI).
SKIP = {"powerbus.bus.__main__"}


def modules() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package.__name__)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name not in SKIP and ".migrations." not in info.name:
                names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", modules())
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
