"""The bus's CORBA face: IDL generated from the protos, and a check that it has not drifted.

>>> from pathlib import Path
>>> from powerbus.adapters.corba.idl import compile_protos, generate_idl
>>> idl = generate_idl(compile_protos(Path("protos")))  # doctest: +SKIP

The mapping rules are in docs/idl-mapping.md; ``powerbus idl generate|check`` is ``cli.app``;
``compare(old, new)`` lists breaking changes between two versions (``check --against``).
"""

from powerbus.adapters.corba.idl.compat import Finding, Severity, Surface, compare
from powerbus.adapters.corba.idl.drift import check_idl, idl_diff
from powerbus.adapters.corba.idl.exceptions import DOMAIN_EXCEPTIONS, DomainException
from powerbus.adapters.corba.idl.generate import generate_idl, idl_exceptions, idl_names
from powerbus.adapters.corba.idl.protoc import compile_protos
from powerbus.adapters.corba.idl.reference import git_revision_exists, load_reference

__all__ = [
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
