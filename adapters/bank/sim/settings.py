"""``powerbus sim bank`` settings: one typed, frozen object resolved at the edge."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from powerbus.adapters.bank.sim.faults import FaultPlan
from powerbus.adapters.bank.statement.model import StatementFormat
from powerbus.bus.kernel.addresses import HostPort

__all__ = ["SimSettings", "demo_key"]


def demo_key(bank_code: str) -> bytes:
    """The MAC key both sides use when none is configured (demo and tests only)."""
    return f"powerbus-demo-mac-{bank_code}".encode()


@dataclass(frozen=True, slots=True, kw_only=True)
class SimSettings:
    """How the simulated bank behaves.

    ``connect`` is the utility's bank node (where collections go); ``listen`` is where
    the bank answers status queries and statement downloads (port 0 picks one).
    ``count`` stops sending after that many collections (None: until stopped).
    ``cutoff``: collections after this time of day settle on the next date.
    ``connect_wait``: how long to wait for the utility to accept the first connection
    before collections start anyway (and, unanswered, stay in progress).
    """

    bank_code: str
    connect: HostPort
    listen: HostPort = HostPort("127.0.0.1", 0)
    key: bytes | None = None
    rate: float = 10.0
    count: int | None = None
    accounts: tuple[str, ...] = tuple(f"31{n:08d}" for n in range(1, 101))
    seed: int = 1
    drop_dir: Path | None = None
    statement_format: StatementFormat = StatementFormat.FIXED
    statement_interval: dt.timedelta = dt.timedelta(seconds=5)
    faults: FaultPlan = field(default_factory=FaultPlan)
    timeout: dt.timedelta = dt.timedelta(seconds=5)
    max_in_flight: int = 16
    max_attempts: int = 5
    connect_wait: dt.timedelta = dt.timedelta(seconds=30)
    cutoff: dt.time | None = None
    state_file: Path | None = None

    @property
    def mac_key(self) -> bytes:
        return self.key or demo_key(self.bank_code)
