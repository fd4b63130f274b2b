"""The node's configured meters: ``metering.v1.Meter`` records in the node's database,
and the translation between them and the acquisition side's meters-file rows.

A ``Meter.address`` says how the node reaches the meter, gateway included:
``modbus://HOST:PORT/UNIT`` (SDM meters and pulse terminals; a pulse channel also has
``channel`` 1-8) or ``dlt645://HOST:PORT/ADDRESS`` (12-digit DL/T 645 address).

>>> from powerbus.adapters.meters import MeterSpec
>>> row = {"meter_id": "P1", "protocol": "modbus", "gateway": "127.0.0.1:5020",
...        "address": "3/2", "model": "pulse8", "pulse_constant": "1600"}
>>> meter = meter_from_spec(MeterSpec.from_row(row), interval=timedelta(minutes=15))
>>> meter.address, meter.channel, meter.model, meter.pulses_per_kwh
('modbus://127.0.0.1:5020/3', 2, 'PULSE8', 1600)
>>> spec_from_meter(meter).to_row() == row
True
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from powerbus.adapters.meters import MeterSpec, Model, WireProtocol
from powerbus.bus.kernel.addresses import parse_host_port
from powerbus.bus.kernel.database import conflict_insert, read_transaction, write_transaction
from powerbus.bus.kernel.errors import AlreadyExists, InvalidArgument, NotFound
from powerbus.metering.v1 import metering_pb2 as pb
from powerbus.nodes.metering.convert import time_to_proto
from powerbus.nodes.metering.store._tables import meters

__all__ = ["MeterCatalog", "Polled", "meter_from_spec", "spec_from_meter"]

_SCHEMES = {WireProtocol.MODBUS: "modbus", WireProtocol.DLT645: "dlt645"}
_KINDS = {
    Model.SDM630: pb.METER_KIND_MODBUS,
    Model.SDM120: pb.METER_KIND_MODBUS,
    Model.PULSE8: pb.METER_KIND_PULSE_CHANNEL,
    Model.DLT645: pb.METER_KIND_DLT645,
}
# A 6+2 digit register wraps after 999999.99 kWh (FACTS §2); a pulse channel's 32-bit
# counter after 2^32 pulses, which VEE knows from the pulse constant.
_REGISTER_ROLLOVER_KWH = 1_000_000.0


def meter_from_spec(spec: MeterSpec, *, interval: timedelta) -> pb.Meter:
    """A meters-file row as a ``Meter`` (active, read every ``interval``)."""
    unit, _, _ = spec.address.partition("/")
    target = spec.address if spec.protocol is WireProtocol.DLT645 else unit
    meter = pb.Meter(
        meter_id=spec.meter_id,
        kind=_KINDS[spec.model],
        address=f"{_SCHEMES[spec.protocol]}://{spec.gateway}/{target}",
        channel=spec.channel,
        model=spec.model.name,
        pulses_per_kwh=spec.pulse_constant or 0,
        rollover_kwh=0.0 if spec.model is Model.PULSE8 else _REGISTER_ROLLOVER_KWH,
        state=pb.METER_STATE_ACTIVE,
    )
    meter.interval.FromTimedelta(interval)
    return meter


def spec_from_meter(meter: pb.Meter) -> MeterSpec:
    """How to read a configured meter; :class:`InvalidArgument` naming the field when its
    address, model or channel cannot be read."""
    scheme, sep, rest = meter.address.partition("://")
    gateway, _, target = rest.partition("/")
    protocols = {v: k for k, v in _SCHEMES.items()}
    if not sep or scheme not in protocols or not target:
        raise InvalidArgument(
            "meter.address",
            f"{meter.meter_id}: want modbus://HOST:PORT/UNIT or dlt645://HOST:PORT/ADDRESS,"
            f" got {meter.address!r}",
        )
    try:
        model = Model(meter.model.lower())
    except ValueError:
        names = ", ".join(m.name for m in Model)
        raise InvalidArgument("meter.model", f"{meter.model!r}; known: {names}") from None
    address = f"{target}/{meter.channel}" if model is Model.PULSE8 else target
    return MeterSpec(
        meter_id=meter.meter_id,
        protocol=protocols[scheme],
        gateway=parse_host_port(gateway, field="meter.address", allow_zero=False),
        address=address,
        model=model,
        pulse_constant=meter.pulses_per_kwh or None,
    )


@dataclass(frozen=True, slots=True)
class Polled:
    """An active meter as the poller needs it: its record and how to read it."""

    meter: pb.Meter
    spec: MeterSpec

    @property
    def gateway(self) -> str:
        return str(self.spec.gateway)


_PUT_ATTEMPTS = 3


class MeterCatalog:
    """``PutMeter``/``GetMeter``/``ListMeters`` over the ``metering_meters`` table; the
    node keeps ``last_read_at`` and ``connect_state`` in columns of their own, so a poll
    does not rewrite every record."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def put(self, meter: pb.Meter) -> pb.Meter:
        """Create or replace ``meter`` (upsert by meter_id); returns it as stored."""
        _check(meter)
        record = pb.Meter()
        record.CopyFrom(meter)
        record.ClearField("last_read_at")
        record.connect_state = pb.CONNECT_STATE_UNSPECIFIED
        if record.state == pb.METER_STATE_UNSPECIFIED:
            record.state = pb.METER_STATE_ACTIVE
        values = {
            "account_id": record.account_id,
            "address": record.address,
            "channel": record.channel,
            "state": int(record.state),
            "body": record.SerializeToString(deterministic=True),
        }
        for attempt in range(_PUT_ATTEMPTS):
            try:
                with write_transaction(self.engine) as conn:
                    # One statement, so instances importing the same meters file at once
                    # both succeed; only the (address, channel) index can still refuse it.
                    insert = conflict_insert(conn, meters).values(
                        meter_id=record.meter_id, connect_state=0, **values
                    )
                    conn.execute(
                        insert.on_conflict_do_update(index_elements=["meter_id"], set_=values)
                    )
                break
            except IntegrityError:
                # PostgreSQL resolves ON CONFLICT on the meter_id index only: two instances
                # inserting the same new meter at the same instant can collide on the
                # (address, channel) index instead. Once the other one committed, the
                # same statement updates; a different meter on the address fails again.
                if attempt + 1 == _PUT_ATTEMPTS:
                    raise AlreadyExists(
                        "meter.address",
                        f"{record.meter_id}: another meter already uses {record.address}"
                        f" channel {record.channel}",
                    ) from None
        return self.get(record.meter_id)

    def put_many(self, records: Sequence[pb.Meter]) -> None:
        """:meth:`put` each (the meters file at start)."""
        for record in records:
            self.put(record)

    def get(self, meter_id: str) -> pb.Meter:
        """The meter, with the state the node keeps; :class:`NotFound` otherwise."""
        with read_transaction(self.engine) as conn:
            row = conn.execute(sa.select(meters).where(meters.c.meter_id == meter_id)).first()
        if row is None:
            raise NotFound(f"meter {meter_id!r} is not configured")
        return _meter(row)

    def require(self, meter_ids: Sequence[str]) -> None:
        """:class:`NotFound` naming the first of ``meter_ids`` that is not configured."""
        wanted = sorted(set(meter_ids))
        with read_transaction(self.engine) as conn:
            known = set(
                conn.execute(
                    sa.select(meters.c.meter_id).where(meters.c.meter_id.in_(wanted))
                ).scalars()
            )
        for meter_id in wanted:
            if meter_id not in known:
                raise NotFound(f"meter {meter_id!r} is not configured")

    def page(
        self, *, account_id: str = "", address: str = "", page_size: int = 0, page_token: str = ""
    ) -> tuple[list[pb.Meter], str]:
        """A page of meters by meter_id, and the next page's token ("" at the end)."""
        size = page_size if page_size > 0 else 500
        query = sa.select(meters).order_by(meters.c.meter_id).limit(min(size, 5000) + 1)
        if account_id:
            query = query.where(meters.c.account_id == account_id)
        if address:
            query = query.where(meters.c.address == address)
        if page_token:
            query = query.where(meters.c.meter_id > _after(page_token))
        with read_transaction(self.engine) as conn:
            rows = conn.execute(query).all()
        page = [_meter(r) for r in rows[:size]]
        token = _token(page[-1].meter_id) if len(rows) > size and page else ""
        return page, token

    def active(self) -> list[Polled]:
        """Every ACTIVE meter with how to read it; a record that cannot be read is left
        out (PutMeter checked it, so only a hand-edited row can be)."""
        query = sa.select(meters).where(meters.c.state == int(pb.METER_STATE_ACTIVE))
        with read_transaction(self.engine) as conn:
            rows = conn.execute(query.order_by(meters.c.meter_id)).all()
        polled = []
        for row in rows:
            meter = _meter(row)
            try:
                polled.append(Polled(meter, spec_from_meter(meter)))
            except InvalidArgument:
                continue
        return polled

    def mark_read(self, meter_ids: Sequence[str], at: datetime) -> None:
        """Record a successful read of ``meter_ids`` at ``at``."""
        if not meter_ids:
            return
        with write_transaction(self.engine) as conn:
            self.mark_read_in(conn, meter_ids, at)

    @staticmethod
    def mark_read_in(conn: Connection, meter_ids: Sequence[str], at: datetime) -> None:
        """:meth:`mark_read` inside the caller's transaction (the poll's own write, so a
        poll commits once)."""
        if meter_ids:
            # an expanding parameter: a line's few hundred ids are bound, not each turned
            # into a literal of the statement
            conn.execute(
                sa.update(meters)
                .where(meters.c.meter_id.in_(sa.bindparam("ids", expanding=True)))
                .values(last_read_at=at),
                {"ids": list(meter_ids)},
            )

    def set_connect_state(self, meter_id: str, state: pb.ConnectState.ValueType) -> None:
        """Record the switch state read back after a CONNECT or DISCONNECT."""
        with write_transaction(self.engine) as conn:
            conn.execute(
                sa.update(meters)
                .where(meters.c.meter_id == meter_id)
                .values(connect_state=int(state))
            )


def _check(meter: pb.Meter) -> None:
    if not meter.meter_id:
        raise InvalidArgument("meter.meter_id", "empty")
    if not meter.address:
        raise InvalidArgument("meter.address", f"{meter.meter_id}: empty")
    if meter.kind == pb.METER_KIND_PULSE_CHANNEL:
        if not meter.pulses_per_kwh:
            raise InvalidArgument(
                "meter.pulses_per_kwh", f"{meter.meter_id}: a pulse channel needs one"
            )
        if not 1 <= meter.channel <= 8:
            raise InvalidArgument(
                "meter.channel", f"{meter.meter_id}: a pulse channel is 1-8, got {meter.channel}"
            )
    spec_from_meter(meter)  # the address and model must be ones the node can read


def _token(meter_id: str) -> str:
    return base64.urlsafe_b64encode(f"m:{meter_id}".encode()).decode()


def _after(token: str) -> str:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not text.startswith("m:"):
        raise InvalidArgument("page.page_token", "not a token ListMeters issued")
    return text[2:]


def _meter(row: sa.Row[tuple[object, ...]]) -> pb.Meter:
    meter = pb.Meter.FromString(row.body)
    meter.connect_state = row.connect_state
    if row.last_read_at is not None:
        meter.last_read_at.CopyFrom(time_to_proto(row.last_read_at))
    return meter
