"""The metering node's readings store: interval and register values with their quality,
rule, detail and raw value, written in batches (executemany on SQLite, COPY into monthly
partitions on PostgreSQL), idempotent by (meter, reading type, time), with estimates
superseded by later measurements and the replaced values kept in history.

Its tables and Alembic history (``metering_alembic_version``) live beside the other
stores' in one database: :meth:`ReadingStore.migrate` creates them.
"""

from powerbus.nodes.metering.store._records import (
    FORWARD_BULK_KWH,
    FORWARD_DELTA_KWH,
    FROZEN_FORWARD_KWH,
    REACTIVE_Q1_DELTA_KVARH,
    REACTIVE_Q2_DELTA_KVARH,
    REVERSE_BULK_KWH,
    REVERSE_DELTA_KWH,
    Fence,
    IntervalRecord,
    RegisterRecord,
    StoredInterval,
    StoredRegister,
    WriteResult,
)
from powerbus.nodes.metering.store._store import ReadingsPage, ReadingStore, SupersededInterval
from powerbus.nodes.metering.store._summary import UsageSummary
from powerbus.nodes.metering.store._windows import LocalWindow

__all__ = [
    "FORWARD_BULK_KWH",
    "FORWARD_DELTA_KWH",
    "FROZEN_FORWARD_KWH",
    "REACTIVE_Q1_DELTA_KVARH",
    "REACTIVE_Q2_DELTA_KVARH",
    "REVERSE_BULK_KWH",
    "REVERSE_DELTA_KWH",
    "Fence",
    "IntervalRecord",
    "LocalWindow",
    "ReadingStore",
    "ReadingsPage",
    "RegisterRecord",
    "StoredInterval",
    "StoredRegister",
    "SupersededInterval",
    "UsageSummary",
    "WriteResult",
]
