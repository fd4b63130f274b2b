"""The public API of the node SDK is what the curated ``__all__`` lists, nothing more."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "powerbus.nodes.sdk": [
        "CALLER_KEY",
        "NODE_KINDS",
        "BusChannel",
        "BusClient",
        "Lease",
        "LoadCounter",
        "Node",
        "NodeConfig",
        "NodePriority",
        "NodeRunner",
        "Registration",
        "ServedService",
        "file_descriptor_set",
        "load_kind",
        "run_node",
    ],
    "powerbus.nodes.echo": ["FAILED_KEY", "EchoNode"],
    "powerbus.nodes.testing": [
        "BUS_COMMAND",
        "NODE_COMMAND",
        "BusHandle",
        "NodeHandle",
        "ProcessError",
        "ProcessGroup",
        "ProcessHandle",
        "Snapshot",
        "child_pids",
        "eventually",
        "eventually_sync",
    ],
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_all_is_pinned_and_every_name_exists(module_name):
    module = importlib.import_module(module_name)
    assert module.__all__ == PUBLIC[module_name]
    for name in module.__all__:
        assert hasattr(module, name), name
