"""IDL identifiers: keywords, escaping, and the per-scope allocator that keeps names unique.

CORBA IDL compares identifiers case-insensitively: ``Foo`` and ``FOO`` clash in one scope,
and ``Module`` clashes with the keyword ``module``. A keyword-like identifier is *escaped*
with a leading underscore (``_module`` names the identifier ``module``); any other clash is
resolved by appending ``_`` until the name is free, first come first served, so the
outcome depends only on the order in which a scope's names are claimed.
"""

from __future__ import annotations

import re

__all__ = ["KEYWORDS", "Scope", "camel", "escape", "sanitize"]

# CORBA 3.0 keywords (omniidl errors on the CORBA 2 ones and warns on the CORBA 3 ones),
# plus the IDL 4 type keywords, so the IDL stays valid for newer compilers too.
KEYWORDS = frozenset(
    word.lower()
    for word in """
    abstract any attribute boolean case char component const consumes context custom
    default double emits enum eventtype exception factory FALSE finder fixed float
    getraises home import in inout interface local long manages module multiple native
    Object octet oneway out primarykey private provides public publishes raises readonly
    setraises sequence short string struct supports switch TRUE truncatable typedef typeid
    typeprefix unsigned union uses ValueBase valuetype void wchar wstring
    int8 uint8 int16 int32 int64 uint16 uint32 uint64 map bitset bitfield bitmask
    """.split()  # noqa: SIM905 - a word list reads better than a list of 76 literals
)

_NOT_IDENT = re.compile(r"[^A-Za-z0-9_]")


def sanitize(name: str) -> str:
    """A proto name as an IDL identifier: IDL identifiers start with a letter.

    >>> sanitize("_hidden"), sanitize("2x")
    ('hidden', 'x2x')
    """
    name = _NOT_IDENT.sub("_", name).lstrip("_")
    if not name or not name[0].isalpha():
        name = "x" + name
    return name


def escape(name: str) -> str:
    """The identifier as written in IDL: keyword-like ones get the escaping underscore.

    >>> escape("interface"), escape("Context"), escape("node")
    ('_interface', '_Context', 'node')
    """
    return f"_{name}" if name.lower() in KEYWORDS else name


def camel(snake: str) -> str:
    """``payment_method`` -> ``PaymentMethod`` (used for oneof union names).

    >>> camel("payment_method"), camel("kind")
    ('PaymentMethod', 'Kind')
    """
    return "".join(part[:1].upper() + part[1:] for part in snake.split("_") if part)


class Scope:
    """The identifiers declared in one IDL scope (module, struct, union or interface).

    ``own`` is the scope's own name, which IDL forbids redeclaring directly inside it
    (an operation ``Echo`` in interface ``Echo``, a member ``date`` in struct ``Date``).

    >>> scope = Scope(own="Echo")
    >>> scope.claim("Echo"), scope.claim("echo_"), scope.claim("Record")
    ('Echo_', 'echo__', 'Record')
    """

    def __init__(self, *, own: str | None) -> None:
        self._own = own.lower() if own else None
        self._taken: set[str] = set()

    def claim(self, desired: str) -> str:
        """Reserve a free identifier as close to ``desired`` as possible and return it."""
        name = sanitize(desired)
        while name.lower() in self._taken or name.lower() == self._own:
            name += "_"
        self._taken.add(name.lower())
        return name
