"""Tariff files: what loads, and what is refused with an error naming file, field and why."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from powerbus.bus.kernel.errors import ConfigError
from powerbus.nodes.billing.tariff import (
    SHIPPED_DIRECTORY,
    InvalidTariff,
    TariffCatalogue,
    TariffNotFound,
    dump_tariff_file,
    load_tariff_file,
    tariff_from_dict,
)

GOOD = """\
tariff_id = "t-demo"
name = "示例"
customer_class = "residential"
voltage_level = "below_1kv"
region = "示例"

[[versions]]
effective_from = 2026-01-01
effective_to = 2026-05-11
energy_price = "0.50"
tier_basis = "monthly"
tiers = [
  { level = 1, up_to_kwh = "200", surcharge = "0" },
  { level = 2, up_to_kwh = "400", surcharge = "0.05" },
  { level = 3, surcharge = "0.30" },
]
tou_windows = [
  { period = "peak", start = "08:00", end = "22:00" },
  { period = "valley", start = "22:00", end = "08:00" },
]
tou_rates = [
  { period = "peak", price = "0.55" },
  { period = "valley", price = "0.30" },
]

[[versions]]
effective_from = 2026-05-11
energy_price = "0.60"
"""


def _write(tmp_path: Path, text: str, name: str = "t-demo") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_file_loads_its_versions_in_order(tmp_path: Path) -> None:
    versions = load_tariff_file(_write(tmp_path, GOOD))
    assert [(v.effective_from, v.effective_to) for v in versions] == [
        (date(2026, 1, 1), date(2026, 5, 11)),
        (date(2026, 5, 11), None),
    ]
    catalogue = TariffCatalogue.of(versions)
    assert catalogue.version("t-demo", date(2026, 5, 10)).energy_price == Decimal("0.50")
    assert catalogue.version("t-demo", date(2026, 5, 11)).energy_price == Decimal("0.60")
    with pytest.raises(TariffNotFound, match="no version in force on 2025-12-31"):
        catalogue.version("t-demo", date(2025, 12, 31))
    with pytest.raises(TariffNotFound, match="no tariff 'nope'"):
        catalogue.version("nope", date(2026, 1, 1))


def test_put_replaces_the_version_with_the_same_start() -> None:
    catalogue = TariffCatalogue.load_directory(SHIPPED_DIRECTORY)
    old = catalogue.version("cn-beijing-residential", date(2026, 1, 1))
    new = tariff_from_dict(
        {
            "tariff_id": old.tariff_id,
            "name": old.name,
            "customer_class": "residential",
            "voltage_level": "below_1kv",
            "region": old.region,
            "effective_from": "2012-07-01",
            "energy_price": "0.5",
        }
    )
    replaced = catalogue.put(new)
    assert replaced.version("cn-beijing-residential", date(2026, 1, 1)) == new
    assert catalogue.version("cn-beijing-residential", date(2026, 1, 1)) == old  # unchanged
    assert len(replaced.versions("cn-beijing-residential")) == 1


def test_every_shipped_file_round_trips_through_dump(tmp_path: Path) -> None:
    for path in sorted(SHIPPED_DIRECTORY.glob("*.toml")):
        versions = load_tariff_file(path)
        again = load_tariff_file(_write(tmp_path, dump_tariff_file(versions), path.stem))
        assert again == versions


def _replace(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new, 1)


BAD = [
    pytest.param(
        _replace('start = "22:00", end = "08:00"', 'start = "21:00", end = "08:00"'),
        "versions[0].tou_windows[1]",
        "overlaps tou_windows[0] at 21:00 in month 1",
        id="overlapping-windows",
    ),
    pytest.param(
        _replace('start = "22:00", end = "08:00"', 'start = "23:00", end = "08:00"'),
        "versions[0].tou_windows",
        "22:00 of month 1 is in no window",
        id="gap-in-windows",
    ),
    pytest.param(
        _replace('up_to_kwh = "400"', 'up_to_kwh = "150"'),
        "versions[0].tiers[1].up_to_kwh",
        "150 is not above 200: tiers must ascend",
        id="descending-tiers",
    ),
    pytest.param(
        _replace('{ period = "valley", price = "0.30" }', '{ period = "valley" }'),
        "versions[0].tou_rates[1]",
        "missing price",
        id="rate-without-price",
    ),
    pytest.param(
        _replace('{ period = "valley", price = "0.30" },\n', ""),
        "versions[0].tou_rates",
        "missing price for valley",
        id="period-without-rate",
    ),
    pytest.param(
        _replace('energy_price = "0.60"\n', 'name = "no price"\n'),
        "versions[1].energy_price",
        "missing price",
        id="no-energy-price",
    ),
    pytest.param(
        _replace('energy_price = "0.50"', "energy_price = 0.50"),
        "versions[0].energy_price",
        "must be a decimal string",
        id="float-price",
    ),
    pytest.param(
        _replace('energy_price = "0.50"', 'energy_price = "0,50"'),
        "versions[0].energy_price",
        "not a decimal",
        id="not-a-decimal",
    ),
    pytest.param(
        _replace("{ level = 3,", "{ level = 4,"),
        "versions[0].tiers[2].level",
        "is 4 but is tier 3 of month 1",
        id="tier-levels-skip",
    ),
    pytest.param(
        _replace(
            '{ level = 3, surcharge = "0.30" }',
            '{ level = 3, up_to_kwh = "900", surcharge = "0.30" }',
        ),
        "versions[0].tiers[2].up_to_kwh",
        "the top tier must have no threshold",
        id="top-tier-threshold",
    ),
    pytest.param(
        _replace('tier_basis = "monthly"', 'tier_basis = "weekly"'),
        "versions[0].tier_basis",
        "'weekly' is not one of",
        id="bad-enum",
    ),
    pytest.param(
        _replace('energy_price = "0.60"', 'energy_price = "0.60"\nenergy_prise = "1"'),
        "versions[1].energy_prise",
        "unknown field",
        id="typo",
    ),
    pytest.param(
        _replace("effective_from = 2026-05-11", "effective_from = 2025-05-11"),
        "versions[1].effective_from",
        "versions must ascend",
        id="versions-out-of-order",
    ),
    pytest.param(
        _replace("effective_to = 2026-05-11", "effective_to = 2026-06-01"),
        "versions[1].effective_from",
        "overlaps the previous version",
        id="versions-overlap",
    ),
    pytest.param(
        _replace("effective_to = 2026-05-11", "effective_to = 2025-06-01"),
        "versions[0].effective_to",
        "must be after effective_from",
        id="ends-before-it-starts",
    ),
    pytest.param(
        _replace('price = "0.55"', 'ratio = "1.1"').replace('energy_price = "0.50"\n', ""),
        "versions[0].tou_rates[0].ratio",
        "a ratio needs the tariff's energy_price",
        id="ratio-without-energy-price",
    ),
    pytest.param(
        _replace('tariff_id = "t-demo"', 'tariff_id = "t-other"'),
        "tariff_id",
        "differs from the file name",
        id="id-differs-from-file",
    ),
    pytest.param(
        _replace('start = "08:00"', 'start = "8h"'),
        "versions[0].tou_windows[0].start",
        'must be a time "HH:MM"',
        id="bad-time",
    ),
]


@pytest.mark.parametrize(("text", "field", "reason"), BAD)
def test_a_bad_file_is_refused_naming_file_field_and_reason(
    tmp_path: Path, text: str, field: str, reason: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(InvalidTariff) as caught:
        load_tariff_file(path)
    error = caught.value
    assert (error.source, error.field) == (str(path), field)
    assert reason in error.reason
    assert str(error).startswith(f"{path}: {field}: ")


def test_a_file_that_is_not_toml_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD + "\nthis is not toml\n")
    with pytest.raises(ConfigError, match=f"{path}: not valid TOML"):
        load_tariff_file(path)


def test_a_catalogue_refuses_two_versions_starting_the_same_day(tmp_path: Path) -> None:
    version = load_tariff_file(_write(tmp_path, GOOD))[0]
    with pytest.raises(InvalidTariff, match="effective_from: 2026-01-01 given twice"):
        TariffCatalogue.of([version, version])
