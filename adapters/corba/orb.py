"""The process's ORB, set up the way every powerbus CORBA peer needs it.

omniORB waits forever for a reply unless told otherwise, and its default native code set
(ISO-8859-1) cannot carry Chinese. :class:`Orb` therefore always starts the ORB with a
client call timeout and a connect timeout (both required, both positive) and with UTF-8
as the native char code set; a server ORB listens on one explicit endpoint.

>>> with Orb(config=OrbConfig(listen=HostPort("127.0.0.1", 0))) as orb:  # doctest: +SKIP
...     ref = orb.activate(EchoServant())
...     print(orb.address)                                           # 127.0.0.1:40123

omniORB holds one ORB per process, so one :class:`Orb` may run at a time.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any

from powerbus.adapters.corba.ior import parse_ior
from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.errors import ConfigError, Unavailable

__all__ = ["Orb", "OrbConfig"]

log = logging.getLogger(__name__)

_lock = threading.Lock()
_running: Orb | None = None


@dataclass(frozen=True, kw_only=True)
class OrbConfig:
    """How the ORB of one process is set up.

    >>> OrbConfig(call_timeout=timedelta(seconds=2)).arguments()[:4]
    ['-ORBclientCallTimeOutPeriod', '2000', '-ORBclientConnectTimeOutPeriod', '5000']
    """

    call_timeout: timedelta = timedelta(seconds=10)
    """Longest wait for any reply (omniORB's clientCallTimeOutPeriod); never unbounded."""
    connect_timeout: timedelta = timedelta(seconds=5)
    """Longest wait for a TCP connection (clientConnectTimeOutPeriod)."""
    listen: HostPort | None = None
    """Serve IIOP here (port 0 picks one); None for a client-only ORB."""
    native_char_code_set: str = "UTF-8"

    def __post_init__(self) -> None:
        for name in ("call_timeout", "connect_timeout"):
            if getattr(self, name) <= timedelta(0):
                raise ConfigError(f"{name}: must be positive (omniORB would wait forever)")

    def arguments(self) -> list[str]:
        """The ``-ORB...`` options ORB_init gets."""
        args = [
            "-ORBclientCallTimeOutPeriod",
            str(_millis(self.call_timeout)),
            "-ORBclientConnectTimeOutPeriod",
            str(_millis(self.connect_timeout)),
            "-ORBnativeCharCodeSet",
            self.native_char_code_set,
            "-ORBnativeWCharCodeSet",
            "UTF-16",
        ]
        if self.listen is not None:
            host = f"[{self.listen.host}]" if ":" in self.listen.host else self.listen.host
            args += ["-ORBendPoint", f"giop:tcp:{host}:{self.listen.port or ''}"]
        else:
            # A client ORB still opens an endpoint for callbacks: keep it on loopback.
            args += ["-ORBendPoint", "giop:tcp:127.0.0.1:"]
        return args


def _millis(duration: timedelta) -> int:
    return max(1, round(duration.total_seconds() * 1000))


class Orb:
    """Starts and stops the process's ORB; a server ORB also activates the root POA."""

    def __init__(self, *, config: OrbConfig) -> None:
        self.config = config
        self._orb: Any = None
        self._poa: Any = None
        self._address: HostPort | None = None

    @property
    def orb(self) -> Any:
        if self._orb is None:
            raise RuntimeError("the ORB is not started")
        return self._orb

    @property
    def poa(self) -> Any:
        if self._poa is None:
            raise RuntimeError("the ORB is not started")
        return self._poa

    @property
    def address(self) -> HostPort:
        """Where the server ORB accepts IIOP (known once an object is activated)."""
        if self._address is None:
            raise RuntimeError("no object activated yet: the ORB's port is not known")
        return self._address

    def start(self) -> None:
        """Initialise the ORB (and activate the root POA). Idempotent."""
        global _running
        if self._orb is not None:
            return
        from omniORB import CORBA  # imported here: only CORBA processes need omniORB

        with _lock:
            if _running is not None:
                raise RuntimeError("this process already runs an ORB")
            try:
                orb = CORBA.ORB_init(["powerbus", *self.config.arguments()], CORBA.ORB_ID)
            except CORBA.SystemException as exc:
                listen = self.config.listen
                raise Unavailable(f"cannot start the ORB on {listen}: {exc}") from None
            poa = orb.resolve_initial_references("RootPOA")
            poa._get_the_POAManager().activate()
            self._orb, self._poa = orb, poa
            _running = self

    def activate(self, servant: Any) -> Any:
        """Activate ``servant`` on the root POA; returns its object reference."""
        self.poa.activate_object(servant)
        ref = self.poa.servant_to_reference(servant)
        if self._address is None:
            self._address = parse_ior(self.orb.object_to_string(ref)).address
        return ref

    def ior(self, ref: Any) -> str:
        return str(self.orb.object_to_string(ref))

    def resolve(self, ior_or_url: str) -> Any:
        """``string_to_object``: an ``IOR:``, ``corbaloc:`` or ``corbaname:`` reference."""
        return self.orb.string_to_object(ior_or_url)

    def stop(self) -> None:
        """Shut the ORB down, letting calls in progress finish, and destroy it. Idempotent."""
        global _running
        orb, self._orb, self._poa = self._orb, None, None
        if orb is None:
            return
        try:
            orb.shutdown(True)
            orb.destroy()
        except Exception:  # shutting down anyway; a failure here must not hide the cause
            log.exception("ORB shutdown failed")
        finally:
            with _lock:
                if _running is self:
                    _running = None

    def __enter__(self) -> Orb:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
