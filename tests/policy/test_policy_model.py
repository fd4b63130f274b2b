"""Policy keys, values and layers: every bad key or value is refused by name."""

from __future__ import annotations

import re

import pytest

from powerbus.bus.kernel.errors import ConfigError, InvalidArgument
from powerbus.bus.policy import (
    PolicyBook,
    PolicyDefaults,
    ServicePolicy,
    StoredPolicy,
    load_policy_defaults,
    policy_keys,
)
from powerbus.load_balancer import FaultTolerance, PickerKind

ECHO = "powerbus.echo.v1.Echo"


def test_every_key_round_trips_through_its_text():
    defaults = ServicePolicy()
    assert ServicePolicy.from_settings(defaults.settings()) == defaults


def test_keys_cover_the_issue_list():
    keys = policy_keys()
    for key in (
        "picker",
        "mode",
        "timeout",
        "retry.max_attempts",
        "retry.budget_ratio",
        "retry.per_try_timeout",
        "hedge.delay",
        "outlier.consecutive_failures",
        "outlier.max_ejected_share",
        "outlier.min_healthy",
        "breaker.open",
        "breaker.probes",
        "service_breaker.failure_ratio",
        "health.interval",
        "health.jitter",
        "slow_start.window",
        "priority.standby_threshold",
        "zone.prefer_local",
        "panic_threshold",
        "ring_hash.balance_factor",
    ):
        assert key in keys


def test_typed_values():
    policy = ServicePolicy.from_settings(
        {
            "picker": "ring_hash",
            "mode": "forking",
            "timeout": "1.5s",
            "retry.backoff_base": "10ms",
            "retry.retry_on": "unavailable, resource_exhausted",
            "outlier.enabled": "off",
            "ring_hash.balance_factor": "1.25",
            "forks": 3,
        }
    )
    assert policy.balancer.picker is PickerKind.RING_HASH
    assert policy.calls.mode is FaultTolerance.FORKING
    assert policy.calls.timeout_s == 1.5
    assert policy.calls.retry.backoff_base_s == pytest.approx(0.01)
    assert policy.calls.retry.retry_on == {"UNAVAILABLE", "RESOURCE_EXHAUSTED"}
    assert policy.balancer.outlier.enabled is False
    assert policy.balancer.ring_hash.balance_factor == 1.25
    assert policy.calls.forks == 3


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("picker", "fastest", "expected one of round_robin, random"),
        ("timeout", "soon", "not a duration"),
        ("retry.max_attempts", "0", "must be at least 1"),
        ("retry.max_attempts", "2.5", "invalid literal"),
        ("outlier.max_ejected_share", "1.5", "is a share"),
        ("breaker.enabled", "maybe", "expected true or false"),
        ("retry.retry_on", "UNAVAILABLE,OOPS", "not gRPC status code names: OOPS"),
        ("ring_hash.balance_factor", "0.5", "0 (off) or at least 1"),
        ("health.interval", "0s", "must be more than 0"),
        ("retry.budget_min", "-1", "must not be negative"),
        ("retry.max_attemps", "2", "unknown policy setting"),
    ],
)
def test_bad_settings_name_the_key(key, value, problem):
    with pytest.raises(InvalidArgument, match=rf"^{re.escape(key)}: .*{re.escape(problem)}"):
        ServicePolicy.from_settings({key: value})


def test_layers_later_wins_and_services_are_separate():
    book = PolicyBook(
        PolicyDefaults(
            common={"timeout": "5s", "retry.max_attempts": 4},
            services={ECHO: {"picker": "least_request", "timeout": "2s"}},
        )
    )
    book.apply(
        [
            StoredPolicy(service="*", settings={"timeout": "3s"}, revision=1),
            StoredPolicy(service=ECHO, settings={"retry.max_attempts": "2"}, revision=2),
        ]
    )
    echo = book.policy(ECHO)
    other = book.policy("powerbus.billing.v1.Billing")
    assert echo.balancer.picker is PickerKind.LEAST_REQUEST
    assert (echo.calls.timeout_s, echo.calls.retry.max_attempts) == (3.0, 2)
    assert (other.calls.timeout_s, other.calls.retry.max_attempts) == (3.0, 4)
    assert book.revision == 2


def test_apply_reports_what_changed_and_refreshes_only_that():
    book = PolicyBook()
    before = book.policy(ECHO)
    assert book.apply([StoredPolicy(service=ECHO, settings={"picker": "random"}, revision=1)]) == {
        ECHO
    }
    assert book.policy(ECHO) != before
    book.apply([StoredPolicy(service=ECHO, settings={}, revision=2)])  # reset
    assert book.policy(ECHO) == before
    assert book.services() == []


def test_policy_file(tmp_path):
    path = tmp_path / "bus.toml"
    path.write_text(
        """
[bus]
grpc = "127.0.0.1:0"

[policy]
picker = "peak_ewma"
"retry.max_attempts" = 2

[policy.outlier]
base_ejection = "10s"

[policy.services."powerbus.echo.v1.Echo"]
mode = "failfast"

[policy.services."powerbus.echo.v1.Echo".hedge]
delay = "20ms"
""",
        encoding="utf-8",
    )
    book = PolicyBook(load_policy_defaults(path))
    echo = book.policy(ECHO)
    assert echo.balancer.picker is PickerKind.PEAK_EWMA
    assert echo.balancer.outlier.base_ejection_s == 10.0
    assert echo.calls.retry.max_attempts == 2
    assert echo.calls.mode is FaultTolerance.FAILFAST
    assert echo.calls.hedge.delay_s == pytest.approx(0.02)
    assert book.policy("other").calls.mode is FaultTolerance.AUTO


def test_policy_file_errors_name_file_and_key(tmp_path):
    path = tmp_path / "bus.toml"
    path.write_text('[policy.retry]\nmax_attempts = "many"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bus.toml \[policy\]: retry.max_attempts: "):
        load_policy_defaults(path)
    with pytest.raises(ConfigError, match="policy file not found"):
        load_policy_defaults(tmp_path / "missing.toml")
