"""The exact tariff engine (电价计算): pure domain code, no I/O beyond reading tariff files.

Tariffs are data (:class:`Tariff`, one version each, kept in a :class:`TariffCatalogue`);
usage is a :class:`Usage`; :func:`quote` prices a whole month under one version,
:func:`bill_period` a month or part of one across version changes, and both return a
:class:`Bill` of self-explaining :class:`BillLine` s in integer fen. For bulk residential
runs, :func:`compile_tariff` turns a version into integer tables that price the same bills
to the same fen, much faster.

>>> from datetime import date
>>> from decimal import Decimal
>>> from powerbus.nodes.billing.tariff import Usage, load_shipped, quote
>>> beijing = load_shipped().version("cn-beijing-residential", date(2026, 5, 1))
>>> print(quote(beijing, Usage(kwh=Decimal(300)), billing_date=date(2026, 5, 1)).table())
        146.49  电度电费 300 kWh × 0.4883 元/kWh = 146.49 元
          3.00  第2档阶梯加价 (240–400 kWh) 60 kWh × 0.05 元/kWh = 3.00 元
        149.49  合计
"""

from powerbus.nodes.billing.tariff._bill import Bill, BillLine, format_fen, to_fen
from powerbus.nodes.billing.tariff._catalogue import (
    SHIPPED_DIRECTORY,
    TariffCatalogue,
    load_shipped,
)
from powerbus.nodes.billing.tariff._codec import tariff_from_dict, tariff_to_dict
from powerbus.nodes.billing.tariff._compiled import CompiledTariff, compile_tariff
from powerbus.nodes.billing.tariff._enums import (
    CustomerClass,
    DemandBasis,
    LineKind,
    TierBasis,
    TouPeriod,
    VoltageLevel,
)
from powerbus.nodes.billing.tariff._errors import InvalidTariff, InvalidUsage, TariffNotFound
from powerbus.nodes.billing.tariff._files import (
    dump_tariff_file,
    load_tariff_file,
    tariff_versions_from_dict,
)
from powerbus.nodes.billing.tariff._model import (
    DemandCharge,
    GovernmentFund,
    PowerFactorStep,
    PowerFactorTable,
    Tariff,
    Tier,
    TouRate,
    TouWindow,
)
from powerbus.nodes.billing.tariff._power_factor import (
    BUILTIN_TABLES,
    adjustment_percent,
    power_factor,
)
from powerbus.nodes.billing.tariff._pricing import bill_period, quote
from powerbus.nodes.billing.tariff._usage import Usage, kwh_from_wire

__all__ = [
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
