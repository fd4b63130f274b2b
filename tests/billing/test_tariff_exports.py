"""The public API of the tariff engine is what the curated ``__all__`` lists, nothing more."""

from __future__ import annotations

import subprocess
import sys

import powerbus.nodes.billing.tariff as tariff

PUBLIC = [
    "BUILTIN_TABLES",
    "SHIPPED_DIRECTORY",
    "Bill",
    "BillLine",
    "CompiledTariff",
    "CustomerClass",
    "DemandBasis",
    "DemandCharge",
    "GovernmentFund",
    "InvalidTariff",
    "InvalidUsage",
    "LineKind",
    "PowerFactorStep",
    "PowerFactorTable",
    "Tariff",
    "TariffCatalogue",
    "TariffNotFound",
    "Tier",
    "TierBasis",
    "TouPeriod",
    "TouRate",
    "TouWindow",
    "Usage",
    "VoltageLevel",
    "adjustment_percent",
    "bill_period",
    "compile_tariff",
    "dump_tariff_file",
    "format_fen",
    "kwh_from_wire",
    "load_shipped",
    "load_tariff_file",
    "power_factor",
    "quote",
    "tariff_from_dict",
    "tariff_to_dict",
    "tariff_versions_from_dict",
    "to_fen",
]


def test_all_is_pinned_and_sorted() -> None:
    assert tariff.__all__ == PUBLIC
    assert all(hasattr(tariff, name) for name in PUBLIC)


def test_the_engine_imports_no_generated_code_and_no_database() -> None:
    # Pure domain code: a servicer converts messages; the engine never sees them. (grpc
    # itself still comes in through powerbus.bus.kernel.errors, which maps statuses.)
    code = (
        "import sys, powerbus.nodes.billing.tariff as t; t.load_shipped(); "
        "bad = [m for m in sys.modules if m.startswith(('powerbus.billing', 'sqlalchemy')) "
        "or m.endswith('_pb2')]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
