"""What every subcommand shares: logging set-up, the bus address option, error exits."""

from __future__ import annotations

import collections
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import grpc
import typer

from powerbus.bus.kernel.addresses import parse_host_port
from powerbus.bus.kernel.errors import PowerbusError, Unavailable
from powerbus.bus.kernel.metadata import AUTHORIZATION_KEY
from powerbus.bus.kernel.tls import TlsFiles
from powerbus.nodes.sdk.cli import LogFormatOption
from powerbus.nodes.sdk.cli import configure_logging as configure_node_logging

__all__ = [
    "BusOption",
    "JsonOption",
    "LogFormatOption",
    "TimeoutOption",
    "bus_channel",
    "client_tls",
    "configure_logging",
    "exit_on_error",
]


def _bus_address(value: str) -> str:
    """``--bus`` must be HOST:PORT: ``50051`` or ``http://...`` is a usage error at once."""
    try:
        parse_host_port(value, field="--bus", allow_zero=False)
    except PowerbusError:
        raise typer.BadParameter(
            f"expected the bus's gRPC address as HOST:PORT such as 127.0.0.1:50051, got {value!r}"
        ) from None
    return value


BusOption = Annotated[
    str,
    typer.Option(
        "--bus",
        envvar="POWERBUS_BUS",
        callback=_bus_address,
        help="The bus's gRPC address, HOST:PORT.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", help="Deadline for each network call, in seconds.", min=0.001)
]


def configure_logging(level: str = "INFO", *, log_format: str = "text") -> None:
    """Log to stderr, as text or one JSON object a line (``log_format="json"``)."""
    if log_format not in ("text", "json"):
        raise typer.BadParameter("expected text or json", param_hint="--log-format")
    configure_node_logging(level, log_format=log_format)


@contextmanager
def exit_on_error(bus: str = "") -> Iterator[None]:
    """Turn powerbus and gRPC errors into one line on stderr and exit status 1; a bus
    that cannot be reached at ``bus`` gets a hint instead of gRPC's own words."""
    try:
        yield
    except PowerbusError as error:
        # The SDK's clients (events, replay) wrap gRPC's refusal in Unavailable: the
        # same hint as a raw gRPC error, not gRPC's own words behind the call's name.
        if bus and isinstance(error, Unavailable) and _unreached(str(error)):
            typer.secho(f"error: {_cannot_reach(bus)}", fg="red", err=True)
        else:
            typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(1) from None
    except grpc.RpcError as error:
        code = error.code() if hasattr(error, "code") else None
        details = error.details() if hasattr(error, "details") else str(error)
        typer.secho(f"error: {_explain(code, details or '', bus)}", fg="red", err=True)
        raise typer.Exit(1) from None


def _explain(code: grpc.StatusCode | None, details: str, bus: str) -> str:
    name = code.name if code is not None else "UNKNOWN"
    first = details.strip().splitlines()[0] if details.strip() else ""
    unreached = code is grpc.StatusCode.UNAVAILABLE and _unreached(details)
    if code is grpc.StatusCode.UNAVAILABLE and "Trying to connect an http1.x server" in details:
        return f"{bus or 'that address'} speaks HTTP/1, not gRPC: give the bus's gRPC port"
    if bus and unreached and "Socket closed" in details and client_tls() is None:
        return (
            f"the bus at {bus} closed the connection: it serves TLS; give your certificate"
            " with POWERBUS_TLS_CERT, POWERBUS_TLS_KEY and POWERBUS_TLS_CA"
        )
    if bus and unreached:
        return _cannot_reach(bus)
    if bus and code is grpc.StatusCode.DEADLINE_EXCEEDED and not first.startswith("no "):
        return f"the bus at {bus} did not answer in time; is it the bus's gRPC port?"
    return f"{name}: {first}"


# What gRPC says when no connection could be made at all.
_NOT_CONNECTED = (
    "failed to connect",
    "Failed to connect",
    "DNS resolution failed",
    "Connection refused",
)


def _unreached(details: str) -> bool:
    return any(sign in details for sign in _NOT_CONNECTED)


def _cannot_reach(bus: str) -> str:
    return (
        f"cannot reach the bus at {bus}; is `powerbus bus` running there?"
        " (give its gRPC address with --bus or POWERBUS_BUS)"
    )


@contextmanager
def bus_channel(address: str) -> Iterator[grpc.Channel]:
    """A short-lived channel to the bus for one command: TLS (mutual, with our certificate)
    when ``POWERBUS_TLS_CERT``/``POWERBUS_TLS_KEY`` (and ``POWERBUS_TLS_CA``) are set, and
    every call presenting ``POWERBUS_TOKEN`` (``powerbus tokens create``) when it is set."""
    tls = client_tls()
    if tls is None:
        channel = grpc.insecure_channel(address)
    else:
        channel = grpc.secure_channel(address, tls.channel_credentials())
    with channel:
        token = os.environ.get("POWERBUS_TOKEN", "").strip()
        yield grpc.intercept_channel(channel, _Bearer(token)) if token else channel


class _Bearer(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds ``authorization: Bearer <token>`` to every call of a sync channel."""

    def __init__(self, token: str) -> None:
        self._pair = (AUTHORIZATION_KEY, f"Bearer {token}")

    def _details(self, details: Any) -> Any:
        return _CallDetails(
            details.method,
            details.timeout,
            (*(details.metadata or ()), self._pair),
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


class _CallDetails(
    collections.namedtuple(
        "_CallDetails",
        ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"),
    ),
    grpc.ClientCallDetails,
):
    """grpc.ClientCallDetails is abstract; its documented way to build one is a subclass."""


def client_tls(env: Mapping[str, str] | None = None) -> TlsFiles | None:
    """The client certificate of operator commands, from ``POWERBUS_TLS_*``; ``None``
    without them. An environment, not flags, so every command has it at once."""
    env = os.environ if env is None else env

    def path(name: str) -> Path | None:
        value = env.get(f"POWERBUS_TLS_{name}")
        return Path(value) if value else None

    return TlsFiles.from_settings(cert=path("CERT"), key=path("KEY"), ca=path("CA"))


Command = Callable[..., None]
