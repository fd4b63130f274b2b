"""Testing powerbus nodes with real processes; the pytest plugin is
``powerbus.nodes.testing.plugin`` (fixtures ``bus``, ``bus_factory``, ``node_factory``)."""

from powerbus.bus.kernel.supervisor import (
    BUS_COMMAND,
    NODE_COMMAND,
    BusHandle,
    NodeHandle,
    ProcessError,
    ProcessGroup,
    ProcessHandle,
)
from powerbus.nodes.testing.leaks import Snapshot, child_pids
from powerbus.nodes.testing.waiting import eventually, eventually_sync

__all__ = [
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
]
