"""NodeConfig resolution: flags > POWERBUS_* environment > the [node] table of a TOML file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.config import resolve
from powerbus.bus.kernel.errors import ConfigError
from powerbus.nodes.sdk import NodeConfig, NodePriority
from powerbus.registry.v1 import registry_pb2


def test_defaults():
    config = resolve(NodeConfig, flags={"id": "echo-1"}, env={})
    assert config.bus is None
    assert config.listen == HostPort("127.0.0.1", 0)
    assert (config.weight, config.zone, config.priority) == (100, "", NodePriority.PRIMARY)
    assert (config.lease_ttl, config.drain_grace) == (timedelta(0), timedelta(seconds=5))
    assert config.state_file is None and config.advertise is None


def test_flags_beat_environment_beat_file(tmp_path: Path):
    toml = tmp_path / "powerbus.toml"
    toml.write_text(
        '[node]\nid = "from-file"\nbus = "10.0.0.1:1"\nweight = 7\nzone = "file"\n'
        'priority = "standby"\nlease_ttl = "3s"\n',
        encoding="utf-8",
    )
    config = resolve(
        NodeConfig,
        flags={"id": "from-flag", "weight": None},
        env={"POWERBUS_WEIGHT": "50", "POWERBUS_ZONE": "env"},
        config_file=toml,
    )
    assert config.id == "from-flag"
    assert config.weight == 50 and config.zone == "env"
    assert config.bus == HostPort("10.0.0.1", 1)
    assert config.priority is NodePriority.STANDBY
    assert config.lease_ttl == timedelta(seconds=3)


def test_every_setting_resolves_from_text():
    config = resolve(
        NodeConfig,
        flags={
            "id": "b-1",
            "bus": "127.0.0.1:50051",
            "listen": "127.0.0.1:7000",
            "advertise": "node.example:7000",
            "state_file": "b.json",
            "weight": "30",
            "zone": "east",
            "priority": "STANDBY",
            "lease_ttl": "2s",
            "drain_grace": "250ms",
            "call_timeout": "1m",
        },
        env={},
    )
    assert config.advertise == HostPort("node.example", 7000)
    assert config.advertised(41000) == HostPort("node.example", 7000)
    assert config.state_file == Path("b.json")
    assert config.priority is NodePriority.STANDBY
    assert config.drain_grace == timedelta(milliseconds=250)
    assert config.call_timeout == timedelta(minutes=1)


def test_advertised_address_defaults_to_the_listen_host_and_bound_port():
    config = NodeConfig(id="n", listen=HostPort("127.0.0.1", 0))
    assert config.advertised(40123) == HostPort("127.0.0.1", 40123)


def test_a_missing_id_names_the_key():
    with pytest.raises(ConfigError, match=r"^id: required"):
        resolve(NodeConfig, flags={"bus": "127.0.0.1:1"}, env={})


def test_a_bad_priority_lists_the_choices():
    with pytest.raises(ConfigError, match=r"POWERBUS_PRIORITY.*primary, standby"):
        resolve(NodeConfig, flags={"id": "n"}, env={"POWERBUS_PRIORITY": "backup"})


def test_a_bad_address_names_where_it_came_from():
    with pytest.raises(ConfigError, match="--bus"):
        resolve(NodeConfig, flags={"id": "n", "bus": "no-port"}, env={})


def test_unknown_keys_in_the_node_table_are_an_error(tmp_path: Path):
    toml = tmp_path / "powerbus.toml"
    toml.write_text('[node]\nid = "n"\nwieght = 5\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="wieght"):
        resolve(NodeConfig, flags={}, env={}, config_file=toml)


@pytest.mark.parametrize(
    ("field", "value"),
    [("weight", -1), ("drain_grace", timedelta(seconds=-1)), ("call_timeout", timedelta(0))],
)
def test_out_of_range_values_name_the_key(field, value):
    with pytest.raises(ConfigError, match=f"^{field}:"):
        NodeConfig(id="n", **{field: value})


def test_priority_maps_to_the_wire_enum():
    assert NodePriority.PRIMARY.to_proto() == registry_pb2.PRIORITY_PRIMARY
    assert NodePriority.STANDBY.to_proto() == registry_pb2.PRIORITY_STANDBY
