"""What the balancer knows about one instance of a service."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

__all__ = ["Endpoint", "Tier"]


class Tier(str, Enum):
    """Hot-standby tier: standby endpoints serve only when primaries cannot."""

    PRIMARY = "primary"
    STANDBY = "standby"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One node serving a service, as the balancer sees it.

    >>> e = Endpoint(node_id="echo-1", address="127.0.0.1:50061")
    >>> (e.weight, e.tier.value)
    (100, 'primary')
    """

    node_id: str
    address: str
    weight: int = 100
    zone: str = ""
    tier: Tier = Tier.PRIMARY
    labels: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
