"""The public surface of the CORBA packages, and their docstring examples."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import powerbus.adapters.corba as corba
import powerbus.adapters.corba.legacy as legacy
import powerbus.nodes.corba_gateway as gateway
import powerbus.nodes.legacy_cis as legacy_cis


def test_exported_members_are_pinned() -> None:
    assert corba.__all__ == [
        "POWERBUS_VMCID",
        "CorbaSchema",
        "IdlCodec",
        "Interface",
        "MessageCodec",
        "NamingService",
        "ObjectRef",
        "Operation",
        "Orb",
        "OrbConfig",
        "Stubs",
        "corba_exception_for_status",
        "error_for_corba_exception",
        "load_stubs",
        "parse_ior",
        "read_ior_file",
        "repository_id",
        "status_for_corba_exception",
        "write_ior_file",
    ]
    assert legacy.__all__ == [
        "LegacyMethod",
        "LegacyService",
        "LegacyTarget",
        "MappingSpec",
        "legacy_file",
    ]
    assert gateway.__all__ == [
        "PEER_KEY",
        "CorbaGatewayNode",
        "GatewaySettings",
        "OperationBridge",
        "servant_class",
    ]
    assert legacy_cis.__all__ == ["LegacyCisNode", "LegacySettings"]
    for module in (corba, legacy, gateway, legacy_cis):
        assert all(hasattr(module, name) for name in module.__all__)


def _modules() -> list[str]:
    names = [corba.__name__]
    names += [m.name for m in pkgutil.walk_packages(corba.__path__, corba.__name__ + ".")]
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
