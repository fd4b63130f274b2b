"""The CRM node's tables: customers, accounts, service points, meter bindings, tickets.

Enumerations are stored as their proto value names (``TICKET_STATUS_OPEN``), so the
database reads the same as the wire and survives renumbering. Timestamps are UTC.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "accounts",
    "appointments",
    "customer_phones",
    "customers",
    "meter_bindings",
    "service_points",
    "sla_targets",
    "tables",
    "ticket_transitions",
    "tickets",
]

tables = sa.MetaData()

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_When = sa.DateTime(timezone=True)

customers = sa.Table(
    "crm_customers",
    tables,
    sa.Column("customer_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    # Digits only, comma separated: exact-match search goes through crm_customer_phones.
    sa.Column("phones", sa.String(400), nullable=False, default=""),
    sa.Column("email", sa.String(200), nullable=False, default=""),
    sa.Column("address", sa.String(400), nullable=False, default=""),
    sa.Column("id_number", sa.String(32), nullable=False, default=""),
    sa.Column("important", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", _When, nullable=False),
)

customer_phones = sa.Table(
    "crm_customer_phones",
    tables,
    sa.Column("phone", sa.String(32), primary_key=True),
    sa.Column("customer_id", sa.String(64), primary_key=True),
)

accounts = sa.Table(
    "crm_accounts",
    tables,
    sa.Column("account_id", sa.String(64), primary_key=True),
    sa.Column("customer_id", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False, default=""),
    sa.Column("status", sa.String(40), nullable=False),
    sa.Column("tariff_id", sa.String(64), nullable=False),
    # The rest of crm.v1.Account (voltage, capacity, demand, ...), serialized: only the
    # node reads it, and search never filters on it.
    sa.Column("details", sa.LargeBinary, nullable=False),
    sa.Column("opened_at", _When, nullable=False),
)

service_points = sa.Table(
    "crm_service_points",
    tables,
    sa.Column("service_point_id", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.String(64), nullable=False, index=True),
    sa.Column("address", sa.String(400), nullable=False),
    # SERVICE_AREA_URBAN / _RURAL / _REMOTE: sets fault-repair arrival deadlines.
    sa.Column("area", sa.String(40), nullable=False),
)

meter_bindings = sa.Table(
    "crm_meter_bindings",
    tables,
    sa.Column("meter_id", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.String(64), nullable=False, index=True),
    sa.Column("service_point_id", sa.String(64), nullable=False, index=True),
    sa.Column("address", sa.String(200), nullable=False, default=""),
    sa.Column("channel", sa.Integer, nullable=False, default=0),
    sa.Column("position", sa.Integer, nullable=False, default=0),
)

tickets = sa.Table(
    "crm_tickets",
    tables,
    sa.Column("ticket_id", sa.String(64), primary_key=True),
    sa.Column("request_id", sa.String(200), nullable=False, unique=True),
    # Hash of the opening request, to tell a retry from a reuse of its request_id.
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("status", sa.String(40), nullable=False, index=True),
    sa.Column("priority", sa.String(40), nullable=False),
    sa.Column("channel", sa.String(40), nullable=False),
    sa.Column("customer_id", sa.String(64), nullable=False, default="", index=True),
    sa.Column("account_id", sa.String(64), nullable=False, default=""),
    sa.Column("meter_id", sa.String(64), nullable=False, default=""),
    sa.Column("service_point_id", sa.String(64), nullable=False, default="", index=True),
    # The service point while a fault ticket is being worked, NULL otherwise: the unique
    # constraint keeps one such ticket per point even between concurrent writers.
    sa.Column("open_fault_point", sa.String(64), nullable=True, unique=True),
    sa.Column("title", sa.String(400), nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("site_address", sa.String(400), nullable=False, default=""),
    sa.Column("area", sa.String(40), nullable=False),
    sa.Column("connection_scheme", sa.String(60), nullable=False),
    sa.Column("assignee", sa.String(200), nullable=False, default=""),
    sa.Column("resolution", sa.Text, nullable=False, default=""),
    sa.Column("reported_at", _When, nullable=False),
    sa.Column("created_at", _When, nullable=False),
    sa.Column("updated_at", _When, nullable=False),
    # Earliest open deadline, for "most urgent first" ordering; NULL when none is open.
    sa.Column("next_due_at", _When, nullable=True, index=True),
)

sla_targets = sa.Table(
    "crm_sla_targets",
    tables,
    sa.Column("ticket_id", sa.String(64), primary_key=True),
    sa.Column("milestone", sa.String(40), primary_key=True),
    sa.Column("due_at", _When, nullable=True),
    sa.Column("met_at", _When, nullable=True),
    # When an overdue alert went out, so the monitor raises each breach once.
    sa.Column("alerted_at", _When, nullable=True),
)

ticket_transitions = sa.Table(
    "crm_ticket_transitions",
    tables,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("ticket_id", sa.String(64), nullable=False, index=True),
    sa.Column("from_status", sa.String(40), nullable=False),
    sa.Column("to_status", sa.String(40), nullable=False),
    sa.Column("at", _When, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("note", sa.Text, nullable=False, default=""),
)

appointments = sa.Table(
    "crm_appointments",
    tables,
    sa.Column("ticket_id", sa.String(64), primary_key=True),
    sa.Column("slot_start", _When, nullable=False, index=True),
    sa.Column("slot_end", _When, nullable=False),
    sa.Column("booked_at", _When, nullable=False),
)
