"""``powerbus demo``: the whole system on one machine, with traffic flowing."""

from __future__ import annotations

import collections
import shutil
import signal
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import grpc
import typer

from powerbus.bus.commands.demo_domains import (
    BANKS,
    FARM_METERS,
    ZONE,
    DomainDemo,
    last_month,
    show_domains,
)
from powerbus.bus.commands.demo_security import DemoSecurity, demo_channel
from powerbus.bus.kernel.supervisor import (
    NODE_COMMAND,
    BusHandle,
    NodeHandle,
    ProcessError,
    ProcessGroup,
    ProcessHandle,
)
from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc

__all__ = ["demo_command"]

_ECHO_NODES = ("echo-1", "echo-2")
_METERING_NODE = "metering-1"


def demo_command(
    grpc_address: Annotated[
        str, typer.Option("--grpc", help="The bus's gRPC address.")
    ] = "127.0.0.1:50051",
    http_address: Annotated[
        str, typer.Option("--http", help="The bus's HTTP address (dashboard).")
    ] = "127.0.0.1:8080",
    workdir: Annotated[
        Path | None,
        typer.Option(
            "--workdir",
            help="Where state files, logs and the database go; made if missing, kept"
            " afterwards (default: a temporary folder, removed on exit).",
        ),
    ] = None,
    duration: Annotated[
        float,
        typer.Option(
            "--duration", help="Stop after this many seconds; 0 runs until Ctrl-C.", min=0
        ),
    ] = 0.0,
    domains: Annotated[
        bool,
        typer.Option(
            "--domains/--no-domains",
            help="Also run CRM, billing, payment and two banks: bill last month over the"
            " farm, collect payments through both banks and reconcile each (the default);"
            " --no-domains for the light demo.",
        ),
    ] = True,
    secure: Annotated[
        bool,
        typer.Option(
            "--secure/--plaintext",
            help="mTLS between every process (a CA and certificates made on the fly in the"
            " work dir) and access control on the bus, with the rules the demo's nodes"
            " need (the default); --plaintext for neither.",
        ),
    ] = True,
) -> None:
    """Run a bus, two echo nodes, a meter farm and a metering node polling it every 5 s
    on this machine, and send traffic through the bus. Unless --no-domains, also a CRM
    node seeded from the farm's meters, billing, payment and two banks (0102, 0103, each
    a simulator and a bank node): it bills last month from the registers the meters
    froze at its boundaries, each bank simulator pays bills, and it prints each bank's
    reconciliation report.

    Every second it prints how many calls each node served. Meanwhile, in another
    terminal, try the commands it prints. Ctrl-C stops everything.

    Example:

        powerbus demo --duration 30
    """
    if workdir is not None:
        try:
            workdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            typer.secho(f"error: --workdir {workdir}: {exc.strerror}", fg="red", err=True)
            raise typer.Exit(1) from None
    work = workdir or Path(tempfile.mkdtemp(prefix="powerbus-demo-"))
    group = ProcessGroup(directory=work)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    deadline = time.monotonic() + duration if duration else float("inf")
    started = time.monotonic()
    period, month_start, month_end = last_month(datetime.now(ZONE).date())
    domain: DomainDemo | None = None
    try:
        farm = _launch_farm(group, work)  # starts while the bus does
        db = f"sqlite:///{work / 'bus.db'}"
        security = DemoSecurity.create(work, db) if secure else None
        bus = group.start_bus(
            grpc=grpc_address,
            http=http_address,
            db=db,
            **(security.bus_flags() if security else {}),
        )
        farm.wait_ready()
        # starts while echo nodes do
        metering = _launch_metering(group, work, bus, farm, security)
        for node_id in _ECHO_NODES:
            tls = security.node_flags(node_id) if security else {}
            group.start_node("echo", bus=bus, node_id=node_id, **tls)
        waiting = [metering]
        if domains:
            meters_file = Path(str(farm.state["meters_file"]))
            domain = DomainDemo(group, work, bus, meters_file, security=security)
            domain.start()  # in parallel; show_domains waits for them after the banner
        for handle in waiting:
            handle.wait_ready()
        ready = time.monotonic() - started
        _explain(bus.grpc, bus.http, work, ready, period if domains else None, security)
        if domain is not None:
            show_domains(domain, period, month_start, month_end)
        typer.echo(
            "\nTraffic through the bus (calls per second, by serving node); Ctrl-C to stop:\n"
        )
        _traffic(bus.grpc, stop, deadline, security)
    except ProcessError as error:
        typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass
    finally:
        names = [h.name for h in reversed(group.handles)]
        group.close()
        typer.echo(f"stopped {', '.join(names)}")
        if workdir is None:  # ours: leave nothing behind
            shutil.rmtree(work, ignore_errors=True)


def _launch_farm(group: ProcessGroup, work: Path) -> ProcessHandle:
    """A small meter farm (``powerbus sim meters``) for the metering node to poll."""
    state_file = work / "meters-sim.json"
    meters = str(FARM_METERS)
    args = [sys.executable, "-m", "powerbus.bus", "sim", "meters", "--meters", meters]
    args += ["--gateways", "2", "--state-file", str(state_file)]
    handle = ProcessHandle(name="meters-sim", args=args, directory=work, state_file=state_file)
    group.handles.append(handle)
    return handle


def _launch_metering(
    group: ProcessGroup,
    work: Path,
    bus: BusHandle,
    farm: ProcessHandle,
    security: DemoSecurity | None,
) -> NodeHandle:
    """A metering node polling the farm every 5 s; ``wait_ready()`` waits for it."""
    state_file = work / f"{_METERING_NODE}.json"
    flags: dict[str, str] = {
        "bus": bus.grpc,
        "listen": "127.0.0.1:0",
        "id": _METERING_NODE,
        "state_file": str(state_file),
        "meters": str(farm.state["meters_file"]),
        "interval": "5s",
        "db": f"sqlite:///{work / 'metering.db'}",
        "events_in": str(bus.state["events_in"]),
        **(security.node_args(_METERING_NODE) if security else {}),
    }
    args = [*NODE_COMMAND, "metering"]
    for key, value in flags.items():
        args += [f"--{key.replace('_', '-')}", value]
    handle = NodeHandle(
        kind="metering",
        node_id=_METERING_NODE,
        name=_METERING_NODE,
        args=args,
        directory=work,
        state_file=state_file,
    )
    group.handles.append(handle)
    return handle


def _explain(
    bus: str,
    http: str,
    work: Path,
    ready: float,
    period: str | None,
    security: DemoSecurity | None,
) -> None:
    polls = f"(polls {FARM_METERS} simulated meters every 5 s)"
    nodes = f"{', '.join(_ECHO_NODES)}, {_METERING_NODE} {polls}"
    domain = ""
    if period is not None:
        banks = ", ".join(BANKS)
        nodes += "\n            crm-1, billing-1, payment-1 (starting); banks after the bills"
        domain = f"""
  domains   bills {period} for every CRM account from the registers the DL/T 645
            meters froze on the 1st (read back by metering-1), then bank
            simulators {banks} pay, and each bank is reconciled (powerbus
            reconcile); the results follow below."""
    typer.echo(f"""
powerbus demo is ready in {ready:.1f} s.
  dashboard http://{http}/
  bus       gRPC {bus}   HTTP {http} (/metrics, /api/...)
  nodes     {nodes}{domain}
  work dir  {work}
            (databases, state files, each process's .out/.err){_secured(security)}

Try, in another terminal:{_client_env(security)}
  powerbus nodes --bus {bus}
  powerbus traffic --http {http}
  powerbus call powerbus.echo.v1.Echo/Echo --bus {bus} --json '{{"message": "你好"}}'
  powerbus meters list --bus {bus}
  powerbus meters readings M00001 --since 10m --bus {bus}""")
    if period is not None:
        typer.echo(f"""  powerbus bill quote --tariff cn-beijing-residential --kwh 300 --bus {bus}
  powerbus reconcile --bank {BANKS[0]} --date {datetime.now(ZONE).date()} --bus {bus}""")
    if security is None:
        typer.echo(f"""  grpcurl -plaintext {bus} list
""")
    else:
        files = security.client
        typer.echo(f"""  grpcurl -cacert {files.ca} \\
      -cert {files.cert} \\
      -key {files.key} {bus} list
""")


def _secured(security: DemoSecurity | None) -> str:
    if security is None:
        return ""
    return f"""
  security  mTLS between every process (certificates in {security.certs.name}/),
            access control on (powerbus acl list --db sqlite:///<work dir>/bus.db)"""


def _client_env(security: DemoSecurity | None) -> str:
    if security is None:
        return ""
    files = security.client
    return f"""
  export POWERBUS_TLS_CERT={files.cert}
  export POWERBUS_TLS_KEY={files.key}
  export POWERBUS_TLS_CA={files.ca}"""


def _traffic(
    bus: str, stop: threading.Event, deadline: float, security: DemoSecurity | None
) -> None:
    with demo_channel(bus, security) as channel:
        stub = echo_pb2_grpc.EchoStub(channel)
        metadata = (("x-powerbus-caller", "demo"),)
        while not stop.is_set() and time.monotonic() < deadline:
            served: collections.Counter[str] = collections.Counter()
            second = time.monotonic() + 1.0
            while time.monotonic() < second and not stop.is_set():
                try:
                    reply = stub.Echo(
                        echo_pb2.EchoRequest(message="ping"), timeout=2.0, metadata=metadata
                    )
                    served[reply.node_id] += 1
                except grpc.RpcError as error:
                    served[f"error {error.code().name}"] += 1
                stop.wait(0.02)
            summary = "  ".join(f"{k}: {v}" for k, v in sorted(served.items()))
            typer.echo(f"{time.strftime('%H:%M:%S')}  {sum(served.values()):4d} calls/s  {summary}")
