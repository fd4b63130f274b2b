"""``powerbus call``: call any registered method through the bus, JSON in and out."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from powerbus.bus.commands.common import BusOption, TimeoutOption, bus_channel, exit_on_error
from powerbus.bus.dynamic_call import ReflectionClient, parse_json_argument
from powerbus.bus.kernel.errors import InvalidArgument

__all__ = ["call_command"]


def call_command(
    method: Annotated[str, typer.Argument(help="SERVICE/METHOD, e.g. powerbus.echo.v1.Echo/Echo.")],
    json_text: Annotated[
        str,
        typer.Option(
            "--json",
            "--data",
            "-d",
            help="The request as JSON: an object, or an array of objects for client-streaming"
            " methods; @FILE reads it from a file, @- or - from stdin.",
        ),
    ] = "{}",
    bus: BusOption = "127.0.0.1:50051",
    metadata: Annotated[
        list[str] | None,
        typer.Option(
            "--metadata",
            "-H",
            help="KEY=VALUE call metadata, repeatable (e.g. x-powerbus-key=M001).",
        ),
    ] = None,
    timeout: TimeoutOption = 10.0,
) -> None:
    """Call a method of any service registered on the bus and print the reply as JSON.

    The request and reply types are found through the bus's server reflection, so no
    generated code is needed. Streaming replies print one JSON object per line.

    Example:

    \b
        powerbus call powerbus.echo.v1.Echo/Echo --json '{"message": "你好"}'
        powerbus call powerbus.echo.v1.Echo/Echo -d @request.json
        echo '{"message": "hi"}' | powerbus call powerbus.echo.v1.Echo/Echo -d @-
    """
    with exit_on_error(bus), bus_channel(bus) as channel:
        pairs = [_pair(m) for m in metadata or []]
        text = _request_text(json_text)
        client = ReflectionClient(channel, timeout=timeout)
        target = client.resolve(method)
        stream = target.method.server_streaming
        if not target.method.client_streaming and text.lstrip().startswith("["):
            raise InvalidArgument(
                "json",
                f"{target.path.lstrip('/')} takes one request: give a JSON object, not an array",
            )
        for reply in client.invoke(
            target, parse_json_argument(text), timeout=timeout, metadata=pairs
        ):
            typer.echo(json.dumps(reply, ensure_ascii=False, indent=None if stream else 2))


def _request_text(value: str) -> str:
    """``@FILE``: the file's text; ``@-`` or ``-``: standard input; else ``value`` itself."""
    if value in ("-", "@-"):
        return sys.stdin.read()
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidArgument("json", f"cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise InvalidArgument("json", f"{path}: not UTF-8 text") from None
    return value


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise InvalidArgument("metadata", f"expected KEY=VALUE, got {text!r}")
    return key.strip().lower(), value
