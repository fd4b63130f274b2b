"""The public surface of powerbus.adapters.corba.idl."""

from __future__ import annotations

import powerbus.adapters.corba.idl as idl
from powerbus.adapters.corba.idl._names import Scope, escape, sanitize


def test_exported_members_are_pinned() -> None:
    assert idl.__all__ == [
        "DOMAIN_EXCEPTIONS",
        "DomainException",
        "Finding",
        "Severity",
        "Surface",
        "check_idl",
        "compare",
        "compile_protos",
        "generate_idl",
        "git_revision_exists",
        "idl_diff",
        "idl_exceptions",
        "idl_names",
        "load_reference",
    ]
    assert idl.__all__ == sorted(idl.__all__, key=lambda n: (not n[0].isupper(), n))
    for name in idl.__all__:
        assert name == "DOMAIN_EXCEPTIONS" or callable(getattr(idl, name))


def test_keywords_are_escaped_case_insensitively() -> None:
    assert [escape(n) for n in ("module", "Module", "ValueBase", "home", "node")] == [
        "_module",
        "_Module",
        "_ValueBase",
        "_home",
        "node",
    ]


def test_identifiers_start_with_a_letter() -> None:
    assert sanitize("__x") == "x"
    assert sanitize("_9") == "x9"


def test_a_scope_resolves_clashes_first_come_first_served() -> None:
    scope = Scope(own="Echo")
    assert scope.claim("Echo") == "Echo_"  # named like the scope itself
    assert scope.claim("ECHO") == "ECHO__"  # case-insensitive clash with Echo_ ... and Echo
    assert scope.claim("value") == "value"
    assert scope.claim("Value") == "Value_"
    assert Scope(own=None).claim("Echo") == "Echo"
