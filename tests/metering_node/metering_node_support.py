"""What the metering node tests share: a meter farm process (``powerbus sim meters``),
metering node processes polling it every second, the farm's control endpoint, calls
through the bus, and bounded waits."""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc

from powerbus.bus.kernel.supervisor import (
    NODE_COMMAND,
    BusHandle,
    NodeHandle,
    ProcessGroup,
    ProcessHandle,
)
from powerbus.common.v1 import common_pb2
from powerbus.metering.v1 import metering_pb2 as pb
from powerbus.metering.v1 import metering_pb2_grpc

WAIT = 30.0
T = TypeVar("T")


class Farm:
    """A running ``powerbus sim meters`` and what its state file says."""

    def __init__(self, handle: ProcessHandle) -> None:
        self.handle = handle
        self.state = handle.state
        self.meters_file = Path(str(self.state["meters_file"]))
        self.gateways = [str(g["address"]) for g in self.state["gateways"]]  # type: ignore[attr-defined]

    def rows(self) -> list[dict[str, str]]:
        """The meters file's rows."""
        import csv

        with open(self.meters_file, encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))

    def control(self, **request: Any) -> dict[str, Any]:
        """One request to the farm's control endpoint, over its socket."""
        host, _, port = str(self.state["control"]).rpartition(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(json.dumps(request).encode() + b"\n")
            reply: dict[str, Any] = json.loads(sock.makefile().readline())
        assert reply.pop("ok"), reply
        return reply


def launch_farm(
    group: ProcessGroup, *, meters: int, gateways: int, seed: int = 7, faults: str = ""
) -> ProcessHandle:
    """Start a farm of ``meters`` behind ``gateways`` lines (``faults``: the ``--faults``
    spec); :func:`farm_ready` waits for it (start the bus in between: each takes seconds,
    mostly imports)."""
    state_file = group.directory / "farm.json"
    args = [sys.executable, "-m", "powerbus.bus", "sim", "meters", "--meters", str(meters)]
    args += ["--gateways", str(gateways), "--seed", str(seed), "--state-file", str(state_file)]
    if faults:
        args += ["--faults", faults]
    handle = ProcessHandle(name="farm", args=args, directory=group.directory, state_file=state_file)
    group.handles.append(handle)
    return handle


def farm_ready(handle: ProcessHandle) -> Farm:
    handle.wait_ready(timeout=WAIT)
    return Farm(handle)


def launch_metering(
    group: ProcessGroup,
    bus: BusHandle,
    farm: Farm,
    *,
    db: str,
    node_id: str = "metering-1",
    interval: str = "1s",
    **options: str,
) -> NodeHandle:
    """Start a metering node polling ``farm`` every ``interval`` and publishing to
    ``bus``; ``handle.wait_ready()`` waits for its registration."""
    state_file = group.directory / f"{node_id}.json"
    flags = {
        "bus": bus.grpc,
        "listen": "127.0.0.1:0",
        "id": node_id,
        "state_file": str(state_file),
        "drain_grace": "0.5s",
        "meters": str(farm.meters_file),
        "interval": interval,
        "db": db,
        "events_in": str(bus.state["events_in"]),
        "request_timeout": "0.25s",
        **options,
    }
    args = [*NODE_COMMAND, "metering"]
    for key, value in flags.items():
        args += ["--" + key.replace("_", "-"), value]
    handle = NodeHandle(
        kind="metering",
        node_id=node_id,
        name=node_id,
        args=args,
        directory=group.directory,
        state_file=state_file,
    )
    group.handles.append(handle)
    return handle


def stub(channel: grpc.Channel) -> metering_pb2_grpc.MeteringStub:
    return metering_pb2_grpc.MeteringStub(channel)


def wait_for(check: Callable[[], T | None], *, timeout: float = WAIT, what: str = "") -> T:
    """Call ``check`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or check}")
        time.sleep(0.2)


def intervals(
    metering: metering_pb2_grpc.MeteringStub, meter_ids: list[str], *, since: float = 120
) -> dict[str, list[pb.IntervalReading]]:
    """Every stored interval of the meters over the last ``since`` seconds, by meter."""
    period = common_pb2.Period()
    period.start.FromSeconds(int(time.time() - since))
    period.end.FromSeconds(int(time.time() + 60))
    out: dict[str, list[pb.IntervalReading]] = {m: [] for m in meter_ids}
    token = ""
    for _ in range(100):
        page = metering.GetMeterReadings(
            pb.GetMeterReadingsRequest(
                meters=[common_pb2.MeterRef(meter_id=m) for m in meter_ids],
                period=period,
                page=common_pb2.PageRequest(page_size=5000, page_token=token),
            ),
            timeout=10,
        )
        for reading in page.meter_readings:
            for block in reading.interval_blocks:
                out[reading.meter.meter_id] += list(block.interval_readings)
        token = page.page.next_page_token
        if not token:
            break
    return out


def header(message_id: str, source: str = "tests") -> common_pb2.MessageHeader:
    return common_pb2.MessageHeader(message_id=message_id, source=source)
