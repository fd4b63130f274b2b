"""The public API of ``powerbus.load_balancer`` is its curated ``__all__``, nothing more."""

from __future__ import annotations

import powerbus.load_balancer as lb

PUBLIC = {
    "NODE_FAILURE_CODES",
    "UNUSED",
    "Attempt",
    "Balancer",
    "BalancerSettings",
    "BalancerSnapshot",
    "BreakerSettings",
    "BreakerState",
    "CallExecutor",
    "CallPolicy",
    "CircuitBreaker",
    "Endpoint",
    "FaultTolerance",
    "HealthCheckSettings",
    "HedgeSettings",
    "Lane",
    "LeastRequestPicker",
    "NodeView",
    "OutlierDetector",
    "OutlierSettings",
    "Outcome",
    "PeakEwmaPicker",
    "PeakEwmaSettings",
    "PickRequest",
    "Picker",
    "PickerKind",
    "PrioritySettings",
    "Refusal",
    "RefusalReason",
    "RetryBudget",
    "RetrySettings",
    "RingHashPicker",
    "RingHashSettings",
    "RoundRobinPicker",
    "Send",
    "SlowStartSettings",
    "SmoothRoundRobinPicker",
    "StatusCode",
    "Tier",
    "WeightedRandomPicker",
    "ZoneSettings",
    "hash64",
    "make_picker",
}


def _isort_style(name: str) -> tuple[int, str]:
    # Constants, then classes, then functions: the order ruff's RUF022 keeps.
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_public_api_is_pinned_and_sorted():
    assert set(lb.__all__) == PUBLIC
    assert lb.__all__ == sorted(lb.__all__, key=_isort_style)


def test_every_exported_name_exists():
    assert all(hasattr(lb, name) for name in lb.__all__)


def test_no_network_library_is_imported():
    # Pure logic: the router and the SDK share it, tests drive it without sockets.
    from pathlib import Path

    for path in Path(lb.__file__).parent.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        for banned in ("import grpc", "import socket", "import asyncio.streams", "sqlalchemy"):
            assert banned not in source, f"{path.name} imports {banned}"
