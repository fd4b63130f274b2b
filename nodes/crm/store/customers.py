"""Customers, accounts, service points and meter bindings in SQLAlchemy.

Synchronous, one transaction per call; the node runs these in a worker thread. Proto
messages go in and out, so the servicers only convert requests.

>>> from powerbus.bus.kernel.database import create_engine
>>> from powerbus.nodes.crm.store.migrations import MIGRATIONS
>>> engine = create_engine("sqlite://"); MIGRATIONS.run(engine)
>>> store = CustomerStore(engine)
>>> store.put_customer(crm_pb2.Customer(customer_id="C1", name="张三丰")).name
'张三丰'
>>> engine.dispose()
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from powerbus.bus.kernel.database import chunked, read_transaction, write_transaction
from powerbus.bus.kernel.errors import AlreadyExists, InvalidArgument, NotFound
from powerbus.common.v1 import common_pb2
from powerbus.crm.v1 import crm_pb2
from powerbus.nodes.crm.store.paging import decode_token, encode_token, page_size
from powerbus.nodes.crm.store.records import timestamp, utc
from powerbus.nodes.crm.store.tables import (
    accounts,
    customer_phones,
    customers,
    meter_bindings,
    service_points,
)

__all__ = ["MIN_CONTRACT_DEMAND_RATIO", "CustomerStore", "ServicePoint"]

# 发改办价格〔2016〕1583号: contract demand at least 40 % of capacity. Billing's tariffs
# carry their own ratio; this is the national floor used until PutAccount consults them.
MIN_CONTRACT_DEMAND_RATIO = 0.40

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class ServicePoint:
    """Where an account is supplied, and the meter there: what a device event maps to."""

    service_point_id: str
    account_id: str
    customer_id: str
    address: str
    area: int
    """``crm_pb2.ServiceArea`` value."""


_PUT_CHUNK = 1000


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class CustomerStore:
    """Reads and writes customers and accounts; ``clock`` stamps created/opened times."""

    def __init__(self, engine: Engine, *, clock: Clock = _now) -> None:
        self.engine = engine
        self.clock = clock

    # -- customers ---------------------------------------------------------------------

    def put_customer(
        self, customer: crm_pb2.Customer, *, id_number: str | None = None
    ) -> crm_pb2.Customer:
        """Create or replace a customer; ``id_number`` (not on the wire) is kept unless given."""
        with write_transaction(self.engine) as conn:
            self._put_customer(conn, customer, id_number)
            return self._customer(conn, customer.customer_id)

    def put_many(
        self, entries: Iterable[tuple[crm_pb2.Customer, str | None, crm_pb2.Account, int | None]]
    ) -> int:
        """Create or replace customers with an account each, ``(customer, id_number,
        account, area)``, a thousand to a transaction (one each made seeding 100,000
        households take minutes of commits); returns how many. Each entry is checked as
        :meth:`put_customer` and :meth:`put_account` check it; an invalid one raises and
        rolls back its own thousand, the thousands before it stay written."""
        count = 0
        for chunk in chunked(entries, _PUT_CHUNK):
            with write_transaction(self.engine) as conn:
                for customer, id_number, account, area in chunk:
                    self._put_customer(conn, customer, id_number)
                    self._put_account(conn, account, area)
            count += len(chunk)
        return count

    def _put_customer(
        self, conn: Connection, customer: crm_pb2.Customer, id_number: str | None
    ) -> None:
        if not customer.customer_id.strip():
            raise InvalidArgument("customer.customer_id", "required")
        if not customer.name.strip():
            raise InvalidArgument("customer.name", "required")
        phones = [p for p in (_digits(p) for p in customer.phones) if p]
        values = {
            "name": customer.name.strip(),
            "kind": crm_pb2.CustomerKind.Name(customer.kind),
            "phones": ",".join(phones),
            "email": customer.email,
            "address": customer.address,
            "important": customer.important,
        }
        if id_number is not None:
            values["id_number"] = id_number
        cid = customer.customer_id
        found = conn.execute(
            sa.select(customers.c.customer_id).where(customers.c.customer_id == cid)
        ).first()
        if found is None:
            values.setdefault("id_number", "")
            row = {"customer_id": cid, "created_at": self.clock(), **values}
            conn.execute(customers.insert().values(**row))
        else:
            conn.execute(customers.update().where(customers.c.customer_id == cid).values(**values))
        conn.execute(customer_phones.delete().where(customer_phones.c.customer_id == cid))
        for phone in dict.fromkeys(phones):
            conn.execute(customer_phones.insert().values(phone=phone, customer_id=cid))

    def get_customer(self, customer_id: str) -> crm_pb2.Customer:
        """The customer; :class:`NotFound` naming it otherwise."""
        with read_transaction(self.engine) as conn:
            return self._customer(conn, customer_id)

    def id_number(self, customer_id: str) -> str:
        """The customer's ID number as stored (callers mask it before it goes anywhere)."""
        with read_transaction(self.engine) as conn:
            value = conn.execute(
                sa.select(customers.c.id_number).where(customers.c.customer_id == customer_id)
            ).scalar_one_or_none()
        if value is None:
            raise NotFound(f"customer {customer_id!r} not found")
        return str(value)

    def search(self, request: crm_pb2.SearchCustomersRequest) -> crm_pb2.SearchCustomersResponse:
        """Customers matching the request's one query, by customer id, paged."""
        ids = self._matching_ids(request)
        size = page_size(request.page.page_size)
        offset = decode_token(request.page.page_token, "search")
        with read_transaction(self.engine) as conn:
            matched = (
                conn.execute(
                    sa.select(customers.c.customer_id)
                    .where(customers.c.customer_id.in_(ids))
                    .order_by(customers.c.customer_id)
                )
                .scalars()
                .all()
            )
            page = matched[offset : offset + size]
            found = [self._customer(conn, cid) for cid in page]
        more = offset + size < len(matched)
        return crm_pb2.SearchCustomersResponse(
            customers=found,
            page=common_pb2.PageResponse(
                next_page_token=encode_token(offset + size, "search") if more else "",
                total_size=len(matched),
            ),
        )

    def _matching_ids(self, request: crm_pb2.SearchCustomersRequest) -> sa.Select[tuple[str]]:
        query = request.WhichOneof("query")
        if query == "name":
            name = request.name.strip()
            if len(name) < 2:
                raise InvalidArgument("name", "needs at least 2 characters")
            pattern = "%" + name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            by_account = sa.select(accounts.c.customer_id).where(
                accounts.c.name.like(pattern, escape="\\")
            )
            return sa.select(customers.c.customer_id).where(
                customers.c.name.like(pattern, escape="\\")
                | customers.c.customer_id.in_(by_account)
            )
        if query == "phone":
            digits = _digits(request.phone)
            if not digits:
                raise InvalidArgument("phone", "has no digits")
            return sa.select(customer_phones.c.customer_id).where(customer_phones.c.phone == digits)
        if query == "account_id":
            return sa.select(accounts.c.customer_id).where(
                accounts.c.account_id == request.account_id
            )
        if query == "meter_id":
            return (
                sa.select(accounts.c.customer_id)
                .join(meter_bindings, meter_bindings.c.account_id == accounts.c.account_id)
                .where(meter_bindings.c.meter_id == request.meter_id)
            )
        raise InvalidArgument("query", "set one of name, phone, account_id, meter_id")

    def _customer(self, conn: Connection, customer_id: str) -> crm_pb2.Customer:
        row = (
            conn.execute(sa.select(customers).where(customers.c.customer_id == customer_id))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"customer {customer_id!r} not found")
        account_ids = (
            conn.execute(
                sa.select(accounts.c.account_id)
                .where(accounts.c.customer_id == customer_id)
                .order_by(accounts.c.account_id)
            )
            .scalars()
            .all()
        )
        return crm_pb2.Customer(
            customer_id=row["customer_id"],
            name=row["name"],
            kind=crm_pb2.CustomerKind.Value(row["kind"]),
            phones=[p for p in row["phones"].split(",") if p],
            email=row["email"],
            address=row["address"],
            important=row["important"],
            account_ids=account_ids,
            created_at=timestamp(row["created_at"]),
        )

    # -- accounts ----------------------------------------------------------------------

    def put_account(self, account: crm_pb2.Account, *, area: int | None = None) -> crm_pb2.Account:
        """Create or replace an account, its service point and its meter bindings.

        ``area`` (a ``ServiceArea``) sets the service point's area; ``None`` keeps it
        (URBAN for a new one).
        """
        with write_transaction(self.engine) as conn:
            self._put_account(conn, account, area)
            return self._account(conn, account.account_id)

    def _put_account(self, conn: Connection, account: crm_pb2.Account, area: int | None) -> None:
        _validate_account(account)
        aid = account.account_id
        details = crm_pb2.Account()
        details.CopyFrom(account)
        details.ClearField("balance")  # billing owns it
        details.ClearField("meters")  # kept as bindings
        if (
            conn.execute(
                sa.select(customers.c.customer_id).where(
                    customers.c.customer_id == account.customer_id
                )
            ).first()
            is None
        ):
            raise NotFound(f"customer {account.customer_id!r} not found")
        self._take_meters(conn, account)
        existing = conn.execute(
            sa.select(accounts.c.opened_at).where(accounts.c.account_id == aid)
        ).first()
        opened = (
            utc(existing[0])
            if existing
            else (
                account.opened_at.ToDatetime(tzinfo=timezone.utc)
                if account.HasField("opened_at")
                else self.clock()
            )
        )
        details.opened_at.FromDatetime(opened)
        values = {
            "customer_id": account.customer_id,
            "name": account.name,
            "status": crm_pb2.AccountStatus.Name(account.status or crm_pb2.ACCOUNT_STATUS_ACTIVE),
            "tariff_id": account.tariff_id,
            "details": details.SerializeToString(deterministic=True),
            "opened_at": opened,
        }
        if existing:
            conn.execute(accounts.update().where(accounts.c.account_id == aid).values(**values))
        else:
            conn.execute(accounts.insert().values(account_id=aid, **values))
        point = self._upsert_service_point(conn, account, area)
        conn.execute(meter_bindings.delete().where(meter_bindings.c.account_id == aid))
        for position, meter in enumerate(account.meters):
            conn.execute(
                meter_bindings.insert().values(
                    meter_id=meter.meter_id,
                    account_id=aid,
                    service_point_id=point,
                    address=meter.address,
                    channel=meter.channel,
                    position=position,
                )
            )

    def _take_meters(self, conn: Connection, account: crm_pb2.Account) -> None:
        """Check the account's meters are free, and take them off closed accounts."""
        ids = [m.meter_id for m in account.meters]
        for index, meter_id in enumerate(ids):
            if not meter_id.strip():
                raise InvalidArgument(f"account.meters[{index}].meter_id", "required")
            if ids.index(meter_id) != index:
                raise InvalidArgument(
                    f"account.meters[{index}].meter_id", f"{meter_id!r} listed twice"
                )
        held = conn.execute(
            sa.select(meter_bindings.c.meter_id, accounts.c.account_id)
            .join(accounts, accounts.c.account_id == meter_bindings.c.account_id)
            .where(meter_bindings.c.meter_id.in_(ids))
            .where(accounts.c.account_id != account.account_id)
            .where(accounts.c.status != "ACCOUNT_STATUS_CLOSED")
        ).first()
        if held is not None:
            raise AlreadyExists(
                "account.meters", f"meter {held[0]!r} is already on open account {held[1]!r}"
            )
        # A binding left over on a closed account moves to this one.
        conn.execute(
            meter_bindings.delete()
            .where(meter_bindings.c.meter_id.in_(ids))
            .where(meter_bindings.c.account_id != account.account_id)
        )

    def _upsert_service_point(
        self, conn: Connection, account: crm_pb2.Account, area: int | None
    ) -> str:
        point = f"SP-{account.account_id}"
        row = conn.execute(
            sa.select(service_points.c.area).where(service_points.c.service_point_id == point)
        ).first()
        area_name = (
            crm_pb2.ServiceArea.Name(area)  # type: ignore[arg-type]
            if area
            else (row[0] if row else "SERVICE_AREA_URBAN")
        )
        values = {
            "account_id": account.account_id,
            "address": account.service_address,
            "area": area_name,
        }
        if row is None:
            conn.execute(service_points.insert().values(service_point_id=point, **values))
        else:
            conn.execute(
                service_points.update()
                .where(service_points.c.service_point_id == point)
                .values(**values)
            )
        return point

    def get_account(self, account_id: str) -> crm_pb2.Account:
        """The account with its meters; :class:`NotFound` naming it otherwise."""
        with read_transaction(self.engine) as conn:
            return self._account(conn, account_id)

    def list_accounts(
        self, customer_id: str, *, include_closed: bool = False
    ) -> list[crm_pb2.Account]:
        """A customer's accounts by id; :class:`NotFound` when the customer is unknown."""
        request = crm_pb2.ListAccountsRequest(
            customer_id=customer_id, include_closed=include_closed
        )
        return list(self.page_accounts(request).accounts)

    def page_accounts(self, request: crm_pb2.ListAccountsRequest) -> crm_pb2.ListAccountsResponse:
        """``ListAccounts``: accounts by id, filtered as the request says, paged (all of a
        customer's at once when no page is asked for, as before paging)."""
        c = accounts.c
        where = []
        if request.customer_id:
            where.append(c.customer_id == request.customer_id)
        if request.tariff_id:
            where.append(c.tariff_id == request.tariff_id)
        if request.statuses:
            names = []
            for value in request.statuses:
                if value not in crm_pb2.AccountStatus.values() or not value:
                    raise InvalidArgument("statuses", f"{value} is not an account status")
                names.append(crm_pb2.AccountStatus.Name(value))
            where.append(c.status.in_(names))
        if not request.include_closed:
            where.append(c.status != "ACCOUNT_STATUS_CLOSED")
        whole = bool(request.customer_id) and not (
            request.page.page_size or request.page.page_token
        )
        size = page_size(request.page.page_size)
        offset = decode_token(request.page.page_token, "accounts")
        with read_transaction(self.engine) as conn:
            if request.customer_id:
                self._customer(conn, request.customer_id)
            total = conn.execute(
                sa.select(sa.func.count()).select_from(accounts).where(*where)
            ).scalar_one()
            query = sa.select(c.account_id).where(*where).order_by(c.account_id)
            if not whole:
                query = query.offset(offset).limit(size)
            ids = conn.execute(query).scalars().all()
            found = [self._account(conn, aid) for aid in ids]
        more = not whole and offset + size < total
        return crm_pb2.ListAccountsResponse(
            accounts=found,
            page=common_pb2.PageResponse(
                next_page_token=encode_token(offset + size, "accounts") if more else "",
                total_size=total,
            ),
        )

    def _account(self, conn: Connection, account_id: str) -> crm_pb2.Account:
        row = conn.execute(
            sa.select(accounts.c.details).where(accounts.c.account_id == account_id)
        ).first()
        if row is None:
            raise NotFound(f"account {account_id!r} not found")
        account = crm_pb2.Account.FromString(row[0])
        bound = (
            conn.execute(
                sa.select(meter_bindings)
                .where(meter_bindings.c.account_id == account_id)
                .order_by(meter_bindings.c.position)
            )
            .mappings()
            .all()
        )
        account.meters.extend(
            common_pb2.MeterRef(meter_id=b["meter_id"], address=b["address"], channel=b["channel"])
            for b in bound
        )
        return account

    # -- service points ----------------------------------------------------------------

    def service_point_of_meter(self, meter_id: str) -> ServicePoint | None:
        """Where a meter is bound, or ``None`` for a meter on no account."""
        with read_transaction(self.engine) as conn:
            row = (
                conn.execute(
                    sa.select(
                        service_points.c.service_point_id,
                        service_points.c.account_id,
                        service_points.c.address,
                        service_points.c.area,
                        accounts.c.customer_id,
                    )
                    .join(
                        meter_bindings,
                        meter_bindings.c.service_point_id == service_points.c.service_point_id,
                    )
                    .join(accounts, accounts.c.account_id == service_points.c.account_id)
                    .where(meter_bindings.c.meter_id == meter_id)
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        return ServicePoint(
            service_point_id=row["service_point_id"],
            account_id=row["account_id"],
            customer_id=row["customer_id"],
            address=row["address"],
            area=crm_pb2.ServiceArea.Value(row["area"]),
        )

    def customer_ids(self) -> Sequence[str]:
        """Every customer id, sorted (for tools and the seed's self-check)."""
        with read_transaction(self.engine) as conn:
            return (
                conn.execute(sa.select(customers.c.customer_id).order_by(customers.c.customer_id))
                .scalars()
                .all()
            )


def _validate_account(account: crm_pb2.Account) -> None:
    if not account.account_id.strip():
        raise InvalidArgument("account.account_id", "required")
    if not account.tariff_id.strip():
        raise InvalidArgument("account.tariff_id", "required")
    if not account.customer_id.strip():
        raise InvalidArgument("account.customer_id", "required")
    demand, capacity = account.contract_demand_kw, account.contract_capacity_kva
    if demand < 0 or capacity < 0:
        raise InvalidArgument("account.contract_demand_kw", "must not be negative")
    if demand > 0 and demand < MIN_CONTRACT_DEMAND_RATIO * capacity:
        raise InvalidArgument(
            "account.contract_demand_kw",
            f"{demand:g} kW is below {MIN_CONTRACT_DEMAND_RATIO:.0%} of the "
            f"{capacity:g} kVA capacity",
        )
