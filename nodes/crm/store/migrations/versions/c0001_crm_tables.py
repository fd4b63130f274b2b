"""CRM tables: customers, phones, accounts, service points, meter bindings, tickets, SLA
targets, transitions and appointments.

Revision ID: c0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "c0001"
down_revision = None
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "crm_customers",
        sa.Column("customer_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("phones", sa.String(400), nullable=False),
        sa.Column("email", sa.String(200), nullable=False),
        sa.Column("address", sa.String(400), nullable=False),
        sa.Column("id_number", sa.String(32), nullable=False),
        sa.Column("important", sa.Boolean, nullable=False),
        sa.Column("created_at", _When, nullable=False),
    )
    op.create_table(
        "crm_customer_phones",
        sa.Column("phone", sa.String(32), primary_key=True),
        sa.Column("customer_id", sa.String(64), primary_key=True),
    )
    op.create_table(
        "crm_accounts",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("tariff_id", sa.String(64), nullable=False),
        sa.Column("details", sa.LargeBinary, nullable=False),
        sa.Column("opened_at", _When, nullable=False),
    )
    op.create_index("ix_crm_accounts_customer_id", "crm_accounts", ["customer_id"])
    op.create_table(
        "crm_service_points",
        sa.Column("service_point_id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("address", sa.String(400), nullable=False),
        sa.Column("area", sa.String(40), nullable=False),
    )
    op.create_index("ix_crm_service_points_account_id", "crm_service_points", ["account_id"])
    op.create_table(
        "crm_meter_bindings",
        sa.Column("meter_id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("service_point_id", sa.String(64), nullable=False),
        sa.Column("address", sa.String(200), nullable=False),
        sa.Column("channel", sa.Integer, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.create_index("ix_crm_meter_bindings_account_id", "crm_meter_bindings", ["account_id"])
    op.create_index(
        "ix_crm_meter_bindings_service_point_id", "crm_meter_bindings", ["service_point_id"]
    )
    _ticket_tables()


def _ticket_tables() -> None:
    op.create_table(
        "crm_tickets",
        sa.Column("ticket_id", sa.String(64), primary_key=True),
        sa.Column("request_id", sa.String(200), nullable=False, unique=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("priority", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("meter_id", sa.String(64), nullable=False),
        sa.Column("service_point_id", sa.String(64), nullable=False),
        sa.Column("open_fault_point", sa.String(64), nullable=True, unique=True),
        sa.Column("title", sa.String(400), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("site_address", sa.String(400), nullable=False),
        sa.Column("area", sa.String(40), nullable=False),
        sa.Column("connection_scheme", sa.String(60), nullable=False),
        sa.Column("assignee", sa.String(200), nullable=False),
        sa.Column("resolution", sa.Text, nullable=False),
        sa.Column("reported_at", _When, nullable=False),
        sa.Column("created_at", _When, nullable=False),
        sa.Column("updated_at", _When, nullable=False),
        sa.Column("next_due_at", _When, nullable=True),
    )
    for column in ("status", "customer_id", "service_point_id", "next_due_at"):
        op.create_index(f"ix_crm_tickets_{column}", "crm_tickets", [column])
    op.create_table(
        "crm_sla_targets",
        sa.Column("ticket_id", sa.String(64), primary_key=True),
        sa.Column("milestone", sa.String(40), primary_key=True),
        sa.Column("due_at", _When, nullable=True),
        sa.Column("met_at", _When, nullable=True),
        sa.Column("alerted_at", _When, nullable=True),
    )
    op.create_table(
        "crm_ticket_transitions",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.String(64), nullable=False),
        sa.Column("from_status", sa.String(40), nullable=False),
        sa.Column("to_status", sa.String(40), nullable=False),
        sa.Column("at", _When, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_index("ix_crm_ticket_transitions_ticket_id", "crm_ticket_transitions", ["ticket_id"])
    op.create_table(
        "crm_appointments",
        sa.Column("ticket_id", sa.String(64), primary_key=True),
        sa.Column("slot_start", _When, nullable=False),
        sa.Column("slot_end", _When, nullable=False),
        sa.Column("booked_at", _When, nullable=False),
    )
    op.create_index("ix_crm_appointments_slot_start", "crm_appointments", ["slot_start"])


def downgrade() -> None:
    for table in (
        "crm_appointments",
        "crm_ticket_transitions",
        "crm_sla_targets",
        "crm_tickets",
        "crm_meter_bindings",
        "crm_service_points",
        "crm_accounts",
        "crm_customer_phones",
        "crm_customers",
    ):
        op.drop_table(table)
