"""The bus router: forwards calls for registered services to a node picked by the balancer.

Names are loaded on first use, so the node SDK can import the node link's frame format
(``powerbus.bus.router.link_frames``) without the router's own dependencies (the registry,
SQLAlchemy).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from powerbus.bus.router.balancers import Balancers, Lane, endpoint_of
    from powerbus.bus.router.call import MethodRoute, RoutedCall
    from powerbus.bus.router.keys import (
        AFFINITY_KEY,
        CALLER_KEY,
        IDEMPOTENT_KEY,
        never_reached,
    )
    from powerbus.bus.router.probes import HealthProber
    from powerbus.bus.router.router import Router
    from powerbus.bus.router.upstreams import UpstreamPool

__all__ = [
    "AFFINITY_KEY",
    "CALLER_KEY",
    "IDEMPOTENT_KEY",
    "Balancers",
    "HealthProber",
    "Lane",
    "MethodRoute",
    "RoutedCall",
    "Router",
    "UpstreamPool",
    "endpoint_of",
    "never_reached",
]

_HOMES = {
    "AFFINITY_KEY": "keys",
    "CALLER_KEY": "keys",
    "IDEMPOTENT_KEY": "keys",
    "never_reached": "keys",
    "Balancers": "balancers",
    "Lane": "balancers",
    "endpoint_of": "balancers",
    "MethodRoute": "call",
    "RoutedCall": "call",
    "HealthProber": "probes",
    "Router": "router",
    "UpstreamPool": "upstreams",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
