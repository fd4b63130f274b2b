"""Helpers of the bad-client tests: a legitimate caller's measured success, a bad client's
garbage, the bus's view of its balancers and a process's resident memory."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc

ECHO = "powerbus.echo.v1.Echo"
ECHO_PATH = f"/{ECHO}/Echo"

GARBAGE = (b"\xff" * 8, b"\x0a\xff\xff\xff\xff\x0f", b"\x0a\x10abc", bytes([7]) * 9)
"""Bytes that are not an ``EchoRequest`` (each fails protobuf's decoding)."""


@dataclass
class Tally:
    """Outcomes of one kind of call, by status code name."""

    codes: dict[str, int] = field(default_factory=dict)

    def add(self, code: str) -> None:
        self.codes[code] = self.codes.get(code, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.codes.values())

    @property
    def success(self) -> float:
        return self.codes.get("OK", 0) / self.total if self.total else 0.0


async def tally_calls(
    call: Callable[[], Awaitable[object]], tally: Tally, stop: asyncio.Event, *, limit: int
) -> None:
    """Make ``call`` one after another until ``stop`` is set or ``limit`` calls were made."""
    for _ in range(limit):
        if stop.is_set():
            return
        try:
            await call()
            tally.add("OK")
        except grpc.aio.AioRpcError as error:
            tally.add(error.code().name)


def balancer_nodes(http_address: str, service: str) -> dict[str, dict[str, object]]:
    """The bus's view of each node of ``service`` (``/api/balancers``)."""
    url = f"http://{http_address}/api/balancers?service={service}"
    with urllib.request.urlopen(url, timeout=5) as response:
        found = json.loads(response.read())["balancers"]
    return {n["node_id"]: n for n in found[0]["nodes"]} if found else {}


def rss_bytes(pid: int) -> int:
    """Resident memory of process ``pid`` (``VmRSS`` of ``/proc/PID/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise LookupError(f"no VmRSS for process {pid}")


def peak_rss_bytes(pid: int) -> int:
    """Peak resident memory of process ``pid`` (``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise LookupError(f"no VmHWM for process {pid}")


def now() -> float:
    return time.monotonic()
