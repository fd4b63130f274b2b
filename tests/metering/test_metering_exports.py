"""The public API of the metering core is what the curated ``__all__`` lists (pinned here), and
VEE loads no database and no generated code."""

from __future__ import annotations

import subprocess
import sys

import powerbus.nodes.metering.store as store
import powerbus.nodes.metering.vee as vee

VEE = [
    "COUNTER_MODULUS",
    "DEFAULT_CONFIG",
    "EstimationMethod",
    "History",
    "IntervalRead",
    "IntervalValue",
    "MeterSpec",
    "QualityCode",
    "RegisterRead",
    "VeeAction",
    "VeeConfig",
    "VeeFinding",
    "VeeOutcome",
    "VeeRule",
    "run_vee",
]
STORE = [
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


def test_all_is_pinned_and_sorted():
    assert vee.__all__ == VEE
    assert store.__all__ == STORE
    assert all(hasattr(vee, n) for n in VEE) and all(hasattr(store, n) for n in STORE)


def test_vee_imports_no_database_and_no_generated_code():
    code = (
        "import sys, powerbus.nodes.metering.vee; "
        "print(sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'psycopg', "
        "'powerbus.metering', 'google.protobuf'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
