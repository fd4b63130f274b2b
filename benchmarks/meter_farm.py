"""The meter farm the metering benchmarks run against: ``powerbus sim meters`` in a
process of its own, and its JSON-lines control endpoint."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

from powerbus.bus.kernel.supervisor import ProcessHandle

__all__ = ["farm_process", "farm_request", "line_busy_seconds"]


def farm_process(directory: Path, *options: str) -> ProcessHandle:
    """``powerbus sim meters OPTIONS`` with its state file in ``directory`` (not started
    until ``wait_ready``)."""
    state_file = directory / "farm.json"
    return ProcessHandle(
        name="farm",
        args=[
            sys.executable, "-m", "powerbus.bus", "sim", "meters", *options,
            "--state-file", str(state_file), "--log-level", "WARNING",
        ],
        directory=directory,
        state_file=state_file,
    )  # fmt: skip


def farm_request(address: str, request: dict[str, Any]) -> dict[str, Any]:
    """One request to the farm's control endpoint at ``address``, and its reply."""
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(json.dumps(request).encode() + b"\n")
        reply: dict[str, Any] = json.loads(conn.makefile().readline())
    return reply


def line_busy_seconds(control: str) -> dict[str, float]:
    """Each gateway's frame time so far (wire time plus turnaround), by address."""
    return {
        line["gateway"]: line["busy_seconds"]
        for line in farm_request(control, {"op": "stats"})["lines"]
    }
