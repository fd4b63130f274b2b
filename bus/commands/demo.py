"""``powerbus demo``: the whole system on one machine, with traffic flowing."""

from __future__ import annotations

import collections
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated

import grpc
import typer

from powerbus.bus.kernel.supervisor import ProcessError, ProcessGroup
from powerbus.echo.v1 import echo_pb2, echo_pb2_grpc

__all__ = ["demo_command"]

_ECHO_NODES = ("echo-1", "echo-2")


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
) -> None:
    """Run a bus and two echo nodes on this machine, and send traffic through the bus.

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
    try:
        bus = group.start_bus(
            grpc=grpc_address, http=http_address, db=f"sqlite:///{work / 'bus.db'}"
        )
        for node_id in _ECHO_NODES:
            group.start_node("echo", bus=bus, node_id=node_id)
        _explain(bus.grpc, bus.http, work)
        _traffic(bus.grpc, stop, duration)
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


def _explain(bus: str, http: str, work: Path) -> None:
    typer.echo(f"""
powerbus demo is running.
  dashboard http://{http}/
  bus       gRPC {bus}   HTTP {http} (/metrics, /api/...)
  nodes     {", ".join(_ECHO_NODES)}
  work dir  {work} (database, state files, each process's .out/.err)

Try, in another terminal:
  powerbus nodes --bus {bus}
  powerbus traffic --http {http}
  powerbus call powerbus.echo.v1.Echo/Echo --bus {bus} --json '{{"message": "你好"}}'
  grpcurl -plaintext {bus} list

Traffic through the bus (calls per second, by serving node); Ctrl-C to stop:
""")


def _traffic(bus: str, stop: threading.Event, duration: float) -> None:
    deadline = time.monotonic() + duration if duration else float("inf")
    with grpc.insecure_channel(bus) as channel:
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
