"""The bank adapter's public surface is pinned, and its docstring examples run."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import powerbus.adapters.bank as bank


def test_exported_members_are_pinned_and_sorted() -> None:
    assert bank.__all__ == sorted(bank.__all__)
    assert len(bank.__all__) == 76
    assert {
        "BankGateway",
        "BankClient",
        "CollectionHandler",
        "ProtocolServer",
        "parse_statement",
        "reconcile",
        "Window",
        "LedgerEntry",
    } <= set(bank.__all__)
    assert all(hasattr(bank, name) for name in bank.__all__)


def _modules() -> list[str]:
    names = [bank.__name__]
    names += [m.name for m in pkgutil.walk_packages(bank.__path__, bank.__name__ + ".")]
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
