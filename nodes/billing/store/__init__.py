"""The billing node's store: its tables and their Alembic history (store ``billing``)."""

from powerbus.nodes.billing.store.tables import (
    allocations,
    bills,
    metadata,
    payments,
    run_accounts,
    runs,
    tariffs,
)

__all__ = ["allocations", "bills", "metadata", "payments", "run_accounts", "runs", "tariffs"]
