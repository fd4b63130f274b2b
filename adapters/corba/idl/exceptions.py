"""The domain errors of the bus's CORBA face: IDL user exceptions every operation raises.

A gRPC call fails with a status code. The codes that say something about the caller's
data (the thing does not exist, it clashes with what exists, the system is not in a state
to do it) become IDL *user* exceptions declared in module ``powerbus``, so CORBA clients
catch them by type; the others become CORBA *system* exceptions (``TRANSIENT``,
``TIMEOUT``, ``BAD_PARAM``...), mapped in ``powerbus.adapters.corba.errors``.

>>> [e.name for e in DOMAIN_EXCEPTIONS]
['NotFound', 'Conflict', 'FailedPrecondition']
>>> exception_for_code("ABORTED").name
'Conflict'
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DOMAIN_EXCEPTIONS", "EXCEPTION_MODULE", "DomainException", "exception_for_code"]

EXCEPTION_MODULE = "powerbus"
"""The proto package (and IDL module) the exceptions are declared in."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DomainException:
    """One IDL user exception: ``exception <name> { string message; };``."""

    name: str
    codes: tuple[str, ...]
    """gRPC status code names it stands for; a CORBA peer's exception maps back to the first."""
    doc: str

    @property
    def code(self) -> str:
        """The gRPC status code name the exception maps back to."""
        return self.codes[0]


DOMAIN_EXCEPTIONS: tuple[DomainException, ...] = (
    DomainException(
        name="NotFound",
        codes=("NOT_FOUND",),
        doc="the named thing does not exist (gRPC NOT_FOUND)",
    ),
    DomainException(
        name="Conflict",
        codes=("ALREADY_EXISTS", "ABORTED"),
        doc="it clashes with what exists (gRPC ALREADY_EXISTS, ABORTED)",
    ),
    DomainException(
        name="FailedPrecondition",
        codes=("FAILED_PRECONDITION",),
        doc="not allowed in the current state (gRPC FAILED_PRECONDITION)",
    ),
)


def exception_for_code(code: str) -> DomainException | None:
    """The user exception standing for the gRPC status code name ``code``, if any."""
    for exception in DOMAIN_EXCEPTIONS:
        if code in exception.codes:
            return exception
    return None
