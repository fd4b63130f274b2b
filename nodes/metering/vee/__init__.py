"""VEE (validation, editing, estimation) of meter data: pure domain code, no I/O.

Give :func:`run_vee` a :class:`MeterSpec`, a period and what was read (interval values,
register reads or both); it returns a :class:`VeeOutcome` whose :class:`IntervalValue` s
carry the value to store, the raw value, the quality, the rule and a detail, plus the
:class:`VeeFinding` s. Thresholds live in :class:`VeeConfig` (``[vee]`` in TOML).
Energy is integer Wh.

>>> from datetime import datetime, timedelta, timezone
>>> t0 = datetime(2026, 12, 1, tzinfo=timezone.utc)
>>> meter = MeterSpec(meter_id="M1", rollover_wh=100_000_000, max_demand_w=20_000)
>>> regs = [RegisterRead(t0, 99_999_000), RegisterRead(t0 + timedelta(minutes=15), 1_000)]
>>> out = run_vee(meter, t0, t0 + timedelta(minutes=15), registers=regs)
>>> v = out.intervals[0]
>>> v.wh, v.quality.value, v.rule.value, v.raw_wh
(2000, 'substituted', 'rollover', -99998000)
"""

from powerbus.nodes.metering.vee._config import VeeConfig
from powerbus.nodes.metering.vee._engine import DEFAULT_CONFIG, run_vee
from powerbus.nodes.metering.vee._enums import EstimationMethod, QualityCode, VeeAction, VeeRule
from powerbus.nodes.metering.vee._history import History
from powerbus.nodes.metering.vee._model import (
    COUNTER_MODULUS,
    IntervalRead,
    IntervalValue,
    MeterSpec,
    RegisterRead,
    VeeFinding,
    VeeOutcome,
)

__all__ = [
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
