"""VEE thresholds from TOML: typed, frozen, and every mistake names its key."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from powerbus.bus.kernel.errors import ConfigError
from powerbus.nodes.metering.errors import InvalidVeeConfig
from powerbus.nodes.metering.vee import VeeConfig


def test_a_toml_table_sets_the_thresholds(tmp_path):
    path = tmp_path / "metering.toml"
    path.write_text(
        '[vee]\nspike_percent = 250\ntime_tolerance = "90s"\nsum_tolerance_percent = 1.5\n'
        'time_zone = "UTC"\n',
        encoding="utf-8",
    )
    cfg = VeeConfig.from_toml(path)
    assert (cfg.spike_percent, cfg.time_tolerance, cfg.sum_tolerance_percent) == (
        250,
        timedelta(seconds=90),
        Decimal("1.5"),
    )
    assert cfg.frozen_intervals == VeeConfig().frozen_intervals
    with pytest.raises(AttributeError):
        cfg.spike_percent = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"spike_pct": 1}, "unknown key"),
        ({"spike_percent": "high"}, "spike_percent: expected a whole number"),
        ({"spike_percent": True}, "spike_percent"),
        ({"time_tolerance": "soon"}, "time_tolerance"),
        ({"frozen_intervals": 1}, "frozen_intervals"),
        ({"low_percent": 120}, "low_percent"),
        ({"max_pulse_hz": -1}, "max_pulse_hz"),
        ({"time_zone": "Nowhere/Land"}, "time_zone"),
        ({"sum_tolerance_percent": "x"}, "sum_tolerance_percent"),
    ],
)
def test_mistakes_name_the_key(table, message):
    with pytest.raises(InvalidVeeConfig, match=message):
        VeeConfig.from_dict(table)


def test_a_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        VeeConfig.from_toml(tmp_path / "nope.toml")
