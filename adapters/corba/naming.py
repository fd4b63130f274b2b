"""A CosNaming service (omniNames): bind, resolve and unbind names like ``powerbus/echo/v1/Echo``.

Names are slash-separated paths; every part but the last is a naming context, created on
bind when missing. Calls go through the process's ORB and so carry its call timeout.

>>> naming = NamingService(orb, "corbaloc::127.0.0.1:2809/NameService")  # doctest: +SKIP
>>> naming.rebind("LegacyCIS/CustomerService", ref)  # doctest: +SKIP
>>> naming.resolve("LegacyCIS/CustomerService")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from powerbus.adapters.corba.orb import Orb
from powerbus.bus.kernel.errors import InvalidArgument, NotFound, Unavailable

__all__ = ["NamingService", "name_of"]

T = TypeVar("T")

# The connection to the naming service went away (it restarted): worth one more try.
_RECONNECT = ("COMM_FAILURE", "TRANSIENT")


def name_of(path: str) -> list[Any]:
    """A CosNaming name from ``a/b/c`` (a ``.`` splits id and kind: ``Echo.Object``)."""
    import CosNaming

    parts = [p for p in path.strip("/").split("/") if p]
    if not parts:
        raise InvalidArgument("name", f"empty naming path {path!r}")
    name = []
    for part in parts:
        ident, _, kind = part.partition(".")
        name.append(CosNaming.NameComponent(ident, kind))
    return name


class NamingService:
    """The root context of a naming service, reached by a ``corbaloc:`` URL or an IOR."""

    def __init__(self, orb: Orb, reference: str) -> None:
        self._orb = orb
        self.reference = reference

    def _root(self) -> Any:
        import CosNaming
        from omniORB import CORBA

        try:
            root = self._orb.resolve(self.reference)._narrow(CosNaming.NamingContext)
        except CORBA.BAD_PARAM as exc:
            raise InvalidArgument("naming", f"not a naming service reference: {exc}") from None
        if root is None:
            raise InvalidArgument("naming", f"{self.reference} is not a naming context")
        return root

    def _call(self, what: str, action: Callable[[Any], T]) -> T:
        """``action(root context)``; sent once more when the connection had gone (a
        restarted naming service), since every naming operation here may be repeated."""
        from omniORB import CORBA

        for attempt in range(2):
            try:
                return action(self._root())
            except CORBA.SystemException as exc:
                if attempt == 0 and type(exc).__name__ in _RECONNECT:
                    continue
                raise Unavailable(f"naming service {self.reference}: {what}: {exc}") from None
        raise AssertionError("unreachable")

    def rebind(self, path: str, ref: Any) -> None:
        """Bind ``ref`` at ``path``, replacing what was there; create missing contexts."""
        import CosNaming

        name = name_of(path)

        def bind(context: Any) -> None:
            for depth in range(1, len(name)):
                try:
                    context = context.bind_new_context(name[depth - 1 : depth])
                except CosNaming.NamingContext.AlreadyBound:
                    found = context.resolve(name[depth - 1 : depth])
                    context = found._narrow(CosNaming.NamingContext)
            context.rebind(name[-1:], ref)

        self._call(f"bind {path}", bind)

    def resolve(self, path: str) -> Any:
        """The object bound at ``path``: :class:`NotFound` when nothing is."""
        import CosNaming

        try:
            return self._call(f"resolve {path}", lambda root: root.resolve(name_of(path)))
        except CosNaming.NamingContext.NotFound:
            raise NotFound(f"nothing bound at {path} in {self.reference}") from None

    def unbind(self, path: str, *, only: Any = None) -> bool:
        """Remove the binding at ``path`` (when ``only`` is given: only if it is that object).

        Returns whether something was removed; an unreachable service removes nothing.
        """
        import CosNaming

        name = name_of(path)

        def remove(root: Any) -> bool:
            if only is not None and not root.resolve(name)._is_equivalent(only):
                return False
            root.unbind(name)
            return True

        try:
            return self._call(f"unbind {path}", remove)
        except (CosNaming.NamingContext.NotFound, Unavailable):
            return False
