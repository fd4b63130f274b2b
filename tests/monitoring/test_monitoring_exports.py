"""Monitoring's public API is its curated ``__all__``; every docstring example runs."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import powerbus.monitoring

PUBLIC = [
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


def test_the_package_exports_its_curated_names():
    assert powerbus.monitoring.__all__ == PUBLIC
    for name in PUBLIC:
        assert hasattr(powerbus.monitoring, name)


def modules() -> list[str]:
    names = ["powerbus.monitoring"]
    for info in pkgutil.walk_packages(powerbus.monitoring.__path__, "powerbus.monitoring."):
        if ".migrations." not in info.name:
            names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", modules())
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
