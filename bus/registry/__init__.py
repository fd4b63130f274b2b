"""The bus registry: nodes register, heartbeat and deregister; the bus routes by it.

>>> from powerbus.bus.registry import NodeHealth, Registry
>>> NodeHealth.DOWN.value
'down'

``Registry`` owns the database (SQLAlchemy; SQLite by default, PostgreSQL to share one
registry between bus instances) and serves ``powerbus.registry.v1.Registry`` through
``Registry.servicer``; ``Registry.directory`` is this instance's in-memory view.
"""

from powerbus.bus.kernel.nodes import (
    ChangeKind,
    Dependency,
    DirectoryChange,
    Load,
    NodeHealth,
    NodeRecord,
    Priority,
    ServiceEntry,
)
from powerbus.bus.registry._admission import NetworkRules
from powerbus.bus.registry._watch import WatchFellBehind
from powerbus.bus.registry.directory import Directory, Listener
from powerbus.bus.registry.registry import Registry

__all__ = [
    "ChangeKind",
    "Dependency",
    "Directory",
    "DirectoryChange",
    "Listener",
    "Load",
    "NetworkRules",
    "NodeHealth",
    "NodeRecord",
    "Priority",
    "Registry",
    "ServiceEntry",
    "WatchFellBehind",
]
