"""The legacy CIS simulator: a real omniORB server of ``LegacyCIS::CustomerService``.

It serves a generated :class:`~.cis_data.CisDatabase` the way the legacy CIS does (GBK
bytes, yuan, ``"YYYYMMDD"``, code strings, property bags, ``CustNotExist``), writes its
IOR to a file and binds itself in a naming service when asked, and runs until SIGTERM
or SIGINT (``powerbus sim legacy-cis``).

>>> settings = SimSettings(ior_file=Path("cis.json"))  # doctest: +SKIP
>>> run_simulator(settings)  # blocks until SIGTERM  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
from pathlib import Path
from typing import Any

from powerbus.adapters.corba.ior import repository_id, write_ior_file
from powerbus.adapters.corba.legacy.paths import legacy_file
from powerbus.adapters.corba.naming import NamingService
from powerbus.adapters.corba.orb import Orb, OrbConfig
from powerbus.adapters.corba.sim.cis_data import CisAccount, CisCustomer, CisDatabase, QueryError
from powerbus.adapters.corba.stubs import Stubs, load_stubs
from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.statefile import write_state_file

__all__ = ["INTERFACE", "CisServant", "SimSettings", "run_simulator", "servant_for"]

log = logging.getLogger(__name__)

INTERFACE = "::LegacyCIS::CustomerService"
DEFAULT_NAME = "LegacyCIS/CustomerService"
_PAGE = 50


@dataclasses.dataclass(frozen=True, kw_only=True)
class SimSettings:
    """``powerbus sim legacy-cis`` settings."""

    listen: HostPort = HostPort("127.0.0.1", 0)
    ior_file: Path | None = None
    naming: str | None = None
    name: str = DEFAULT_NAME
    customers: int = 3000
    seed: int = 2003
    state_file: Path | None = None
    idl: Path | None = None
    stubs_dir: Path | None = None


def servant_for(stubs: Stubs, database: CisDatabase) -> Any:
    """A servant of the CIS interface over ``database``."""
    skeleton = stubs.skeleton(INTERFACE)
    servant_class = type("CisServant", (CisServant, skeleton), {})
    return servant_class(stubs, database)


class CisServant:
    """The operations of ``LegacyCIS::CustomerService`` (mixed with the POA skeleton)."""

    def __init__(self, stubs: Stubs, database: CisDatabase) -> None:
        self._db = database
        module = stubs.attribute("::LegacyCIS")
        self._m = module
        self._gbk_tc = stubs.type_code("::LegacyCIS::GBKString")

    # --- operations -----------------------------------------------------------------------

    def QueryCustByNo(self, custNo: str) -> Any:
        customer = self._db.customer(custNo)
        if customer is None:
            raise self._m.CustNotExist(custNo, "客户不存在")
        return self._cust(customer)

    def QueryCust(self, conditions: Any, startRow: int, maxRows: int) -> Any:
        wanted: dict[str, str] = {}
        for prop in conditions:
            value = prop.value.value()
            wanted[prop.name] = value.decode("gbk") if isinstance(value, bytes) else str(value)
        try:
            rows = self._db.query(
                name=wanted.get("CUST_NAME", ""),
                tel=wanted.get("TEL", ""),
                cons_no=wanted.get("CONS_NO", ""),
                meter_no=wanted.get("METER_NO", ""),
            )
        except QueryError as exc:
            raise self._m.BadQuery(str(exc)) from None
        size = maxRows if maxRows > 0 else _PAGE
        start = max(startRow, 0)
        page = rows[start : start + size]
        following = start + size if start + size < len(rows) else -1
        return self._m.CustQueryResult(len(rows), following, [self._cust(c) for c in page])

    def QueryConsByNo(self, consNo: str) -> Any:
        account = self._db.account(consNo)
        if account is None:
            raise self._m.ConsNotExist(consNo, "用电户不存在")
        return self._cons(account)

    def QueryConsByCust(self, custNo: str, inclCancelled: bool) -> Any:
        if self._db.customer(custNo) is None:
            raise self._m.CustNotExist(custNo, "客户不存在")
        accounts = self._db.accounts_of(custNo, include_cancelled=bool(inclCancelled))
        return [self._cons(a) for a in accounts]

    def GetCustCount(self) -> int:
        return len(self._db.customers)

    # --- records as the CIS sends them ----------------------------------------------------

    def _prop(self, name: str, value: Any) -> Any:
        from omniORB import CORBA

        if isinstance(value, bytes):
            held = CORBA.Any(self._gbk_tc, value)
        elif isinstance(value, int):
            held = CORBA.Any(CORBA.TC_long, value)
        elif isinstance(value, float):
            held = CORBA.Any(CORBA.TC_double, value)
        else:
            held = CORBA.Any(CORBA.TC_string, value)
        return self._m.Property(name, held)

    def _cust(self, c: CisCustomer) -> Any:
        props = [self._prop("CONTACT", c.contact.encode("gbk")), self._prop("CREDIT_LEVEL", "A")]
        if c.email:
            props.insert(0, self._prop("EMAIL", c.email))
        return self._m.CustInfo(
            c.cust_no,
            c.name.encode("gbk"),
            c.cust_type,
            c.address.encode("gbk"),
            list(c.phones),
            c.vip,
            c.open_date,
            [a.cons_no for a in c.accounts],
            props,
        )

    def _cons(self, a: CisAccount) -> Any:
        props = [self._prop("RATED_VOLT", a.rated_volts)]
        if a.bank_code:
            props.append(self._prop("BANK_CODE", a.bank_code))
        if a.demand_kw:
            props.append(self._prop("DEMAND_KW", a.demand_kw))
        return self._m.ConsInfo(
            a.cons_no,
            a.cust_no,
            a.name.encode("gbk"),
            a.status,
            a.address.encode("gbk"),
            a.tariff,
            [self._m.MeterInfo(no, address) for no, address in a.meters],
            a.balance_yuan,
            a.volt_code,
            a.capacity_kva,
            a.open_date,
            props,
        )


def run_simulator(settings: SimSettings) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit status (0 after a clean stop)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stubs = load_stubs(settings.idl or legacy_file("LegacyCIS.idl"), cache_dir=settings.stubs_dir)
    database = CisDatabase.generate(count=settings.customers, seed=settings.seed)
    with Orb(config=OrbConfig(listen=settings.listen)) as orb:
        ref = orb.activate(servant_for(stubs, database))
        ior = orb.ior(ref)
        if settings.ior_file is not None:
            write_ior_file(settings.ior_file, {repository_id(INTERFACE): ior})
        if settings.naming:
            NamingService(orb, settings.naming).rebind(settings.name, ref)
        log.info("legacy CIS simulator: %d customers on %s", len(database.customers), orb.address)
        if settings.state_file is not None:
            write_state_file(
                settings.state_file,
                {"iiop": str(orb.address), "ior": ior, "customers": len(database.customers)},
            )
        while not stop.wait(0.5):
            pass
        log.info("legacy CIS simulator stopping")
    return 0
