"""Where the legacy object is, and calling it with a deadline.

The object reference comes from an IOR file (re-read whenever the reference stops
working, so a restarted legacy server that rewrote its file is found again) or from a
naming service (resolved again likewise, so a server that re-bound its name after a
restart, or an omniNames that restarted, is found again). A call that failed to reach
the object is sent once more to the fresh reference when the rpc is idempotent.

>>> target = LegacyTarget(  # doctest: +SKIP
...     orb=orb, interface=objref_class, repository_id=repo_id,
...     naming=url, name="LegacyCIS/CustomerService",
... )
>>> target.invoke(lambda ref: ref.GetCustCount(), timeout=2.0, idempotent=True)  # doctest: +SKIP
3000
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from powerbus.adapters.corba.ior import read_ior_file
from powerbus.adapters.corba.naming import NamingService
from powerbus.adapters.corba.orb import Orb
from powerbus.bus.kernel.errors import ConfigError, InvalidArgument, Unavailable

__all__ = ["LegacyTarget"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Raised when the reference no longer leads to the object: worth resolving it again.
_STALE = ("TRANSIENT", "COMM_FAILURE", "OBJECT_NOT_EXIST", "INV_OBJREF")


class LegacyTarget:
    """The legacy object reached by ``ior_file`` or by ``naming`` + ``name``."""

    def __init__(
        self,
        *,
        orb: Orb,
        interface: type,
        repository_id: str,
        ior_file: Path | None = None,
        naming: str | None = None,
        name: str = "",
    ) -> None:
        if (ior_file is None) == (naming is None):
            raise ConfigError("legacy: give exactly one of an IOR file and a naming service")
        if naming is not None and not name:
            raise ConfigError("legacy: a naming service needs the name to resolve")
        self._orb = orb
        self._interface = interface
        self._repository_id = repository_id
        self._ior_file = ior_file
        self._naming = NamingService(orb, naming) if naming is not None else None
        self._name = name
        self._lock = threading.Lock()
        self._ref: Any = None

    @property
    def source(self) -> str:
        if self._naming is not None:
            return f"{self._name} in {self._naming.reference}"
        return f"IOR file {self._ior_file}"

    def reference(self) -> Any:
        """The narrowed object reference (resolved on first use and after a failure)."""
        with self._lock:
            if self._ref is None:
                self._ref = self._resolve()
            return self._ref

    def forget(self, ref: Any) -> None:
        with self._lock:
            if self._ref is ref:
                self._ref = None

    def _resolve(self) -> Any:
        from omniORB import CORBA

        if self._naming is not None:
            obj = self._naming.resolve(self._name)
        else:
            assert self._ior_file is not None
            try:
                ior = read_ior_file(self._ior_file, self._repository_id)
            except FileNotFoundError:
                raise Unavailable(f"legacy IOR file {self._ior_file} does not exist") from None
            try:
                obj = self._orb.resolve(ior)
            except CORBA.BAD_PARAM:
                raise InvalidArgument("legacy_ior_file", f"{self._ior_file}: not an IOR") from None
        try:
            narrowed = obj._narrow(self._interface)
        except CORBA.SystemException as exc:
            raise Unavailable(f"legacy object at {self.source} unreachable: {exc}") from None
        if narrowed is None:
            raise InvalidArgument("legacy", f"{self.source} is not a {self._repository_id}")
        log.info("legacy object resolved from %s", self.source)
        return narrowed

    def invoke(self, call: Callable[[Any], T], *, timeout: float, idempotent: bool) -> T:
        """``call(reference)`` in this thread with a call timeout of ``timeout`` seconds.

        A failure to reach the object drops the reference; an idempotent call is then
        tried once more on a freshly resolved one. CORBA exceptions propagate.
        """
        import omniORB
        from omniORB import CORBA

        deadline = time.monotonic() + timeout
        attempts = 2 if idempotent else 1
        for attempt in range(attempts):
            ref = self.reference()
            remaining = deadline - time.monotonic()
            omniORB.setClientThreadCallTimeout(max(1, round(remaining * 1000)))
            try:
                return call(ref)
            except CORBA.SystemException as exc:
                if type(exc).__name__ not in _STALE:
                    raise
                self.forget(ref)
                reached = exc.completed != CORBA.COMPLETED_NO
                if attempt + 1 == attempts or deadline <= time.monotonic():
                    raise
                if reached and not idempotent:
                    raise
                log.info("legacy call failed (%s); resolving %s again", exc, self.source)
        raise AssertionError("unreachable")
