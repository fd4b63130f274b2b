"""Traffic monitoring: what flows across the bus, what is healthy, and what depends on what.

>>> from powerbus.monitoring import CallRecord, NullObserver
>>> NullObserver().call_finished(CallRecord("s", "m", "n", "c", "OK", 0.001, 1, 1))
"""

from powerbus.bus.kernel.calls import (
    LATENCY_BUCKETS_S,
    CallObserver,
    CallOrigin,
    CallRecord,
    NullObserver,
)
from powerbus.monitoring.config import MonitoringConfig, load_monitoring_config
from powerbus.monitoring.monitor import Monitoring
from powerbus.monitoring.recorder import LabelLimits, TrafficRecorder
from powerbus.monitoring.reports import TrafficReportsServicer
from powerbus.monitoring.rules import AlertKind, AlertRule, Severity

__all__ = [
    "LATENCY_BUCKETS_S",
    "AlertKind",
    "AlertRule",
    "CallObserver",
    "CallOrigin",
    "CallRecord",
    "LabelLimits",
    "Monitoring",
    "MonitoringConfig",
    "NullObserver",
    "Severity",
    "TrafficRecorder",
    "TrafficReportsServicer",
    "load_monitoring_config",
]
