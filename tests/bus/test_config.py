"""Configuration precedence and errors: flags > POWERBUS_* > TOML."""

from __future__ import annotations

from datetime import timedelta

import pytest

from powerbus.bus.config import BusConfig
from powerbus.bus.kernel.addresses import HostPort, parse_host_port
from powerbus.bus.kernel.config import parse_duration, resolve
from powerbus.bus.kernel.errors import ConfigError, InvalidArgument


def test_flags_beat_environment_beat_file(tmp_path):
    config = tmp_path / "powerbus.toml"
    config.write_text(
        '[bus]\ngrpc = "127.0.0.1:1111"\ndb = "sqlite:///file.db"\nlease_ttl = "30s"\n'
    )
    cfg = resolve(
        BusConfig,
        flags={"grpc": "127.0.0.1:3333", "db": None},
        env={"POWERBUS_GRPC": "127.0.0.1:2222", "POWERBUS_DB": "sqlite:///env.db"},
        config_file=config,
    )
    assert cfg.grpc == HostPort("127.0.0.1", 3333)
    assert cfg.db == "sqlite:///env.db"
    assert cfg.lease_ttl == timedelta(seconds=30)


def test_defaults_when_nothing_is_given():
    cfg = resolve(BusConfig, env={})
    assert str(cfg.grpc) == "127.0.0.1:50051" and cfg.lease_ttl == timedelta(seconds=10)


def test_unknown_key_in_file_is_named(tmp_path):
    config = tmp_path / "powerbus.toml"
    config.write_text('[bus]\ngrcp = "127.0.0.1:1"\n')
    with pytest.raises(ConfigError, match="grcp"):
        resolve(BusConfig, env={}, config_file=config)


def test_bad_value_names_its_source():
    with pytest.raises(ConfigError, match="POWERBUS_LEASE_TTL"):
        resolve(BusConfig, env={"POWERBUS_LEASE_TTL": "soon"})


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        resolve(BusConfig, env={}, config_file=tmp_path / "absent.toml")


@pytest.mark.parametrize(
    ("text", "seconds"), [("250ms", 0.25), ("10s", 10), ("5m", 300), ("1h", 3600), ("2.5", 2.5)]
)
def test_durations(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["x", "1:2:3", "host:", ":80", "h:99999", "h o:1", "[zz]:1"])
def test_bad_addresses_are_rejected(text):
    with pytest.raises(InvalidArgument, match="address"):
        parse_host_port(text)


def test_ipv6_addresses():
    assert str(parse_host_port("[::1]:50051")) == "[::1]:50051"
