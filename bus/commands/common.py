"""What every subcommand shares: logging set-up, the bus address option, error exits."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import grpc
import typer

from powerbus.bus.kernel.errors import PowerbusError

__all__ = [
    "BusOption",
    "JsonOption",
    "TimeoutOption",
    "bus_channel",
    "configure_logging",
    "exit_on_error",
]

BusOption = Annotated[
    str, typer.Option("--bus", envvar="POWERBUS_BUS", help="The bus's gRPC address, HOST:PORT.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", help="Deadline for each network call, in seconds.", min=0.001)
]


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@contextmanager
def exit_on_error() -> Iterator[None]:
    """Turn powerbus and gRPC errors into one line on stderr and exit status 1."""
    try:
        yield
    except PowerbusError as error:
        typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(1) from None
    except grpc.RpcError as error:
        code = error.code().name if hasattr(error, "code") else "UNKNOWN"
        details = error.details() if hasattr(error, "details") else str(error)
        typer.secho(f"error: {code}: {details}", fg="red", err=True)
        raise typer.Exit(1) from None


@contextmanager
def bus_channel(address: str) -> Iterator[grpc.Channel]:
    """A short-lived channel to the bus for one command."""
    with grpc.insecure_channel(address) as channel:
        yield channel


Command = Callable[..., None]
