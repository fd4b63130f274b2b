"""``powerbus events tail|replay``: watch live events, or read a source's stored ones.

Payload fields the protos mark personal are printed masked (``138****1234``) unless
``--show-personal`` is given: a terminal, a scroll-back buffer or a pasted log is no place
for a customer's phone.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Annotated

import grpc
import typer
from google.protobuf.json_format import MessageToDict

from powerbus.bus.commands.common import BusOption, JsonOption, TimeoutOption, exit_on_error
from powerbus.bus.kernel.lifecycle import run_event_loop
from powerbus.bus.kernel.personal_data import masked_json
from powerbus.events.v1 import events_pb2
from powerbus.nodes.sdk.events import ReplayClient, Subscriber, SubscriberSettings

__all__ = ["events_app"]

events_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    help="Live events on the bus, and replay from its store.",
)

EventsOutOption = Annotated[
    str,
    typer.Option(
        "--events-out",
        envvar="POWERBUS_EVENTS_OUT",
        help="The bus's subscribe socket HOST:PORT (default: asked from the bus at --bus).",
    ),
]
ShowPersonalOption = Annotated[
    bool,
    typer.Option(
        "--show-personal",
        help="Print personal data (names, phones, ID numbers…) unmasked in --json payloads.",
    ),
]


@dataclass(frozen=True)
class _Show:
    """How events are printed: as JSON or one line each; personal data masked or not."""

    as_json: bool
    personal: bool


@events_app.command("tail")
def tail_command(
    events_out: EventsOutOption = "",
    bus: BusOption = "127.0.0.1:50051",
    topic: Annotated[
        str, typer.Option("--topic", help="Only topics starting with this prefix.")
    ] = "",
    count: Annotated[int, typer.Option("--count", help="Stop after this many (0: never).")] = 0,
    seconds: Annotated[
        float, typer.Option("--seconds", help="Stop after this long (0: never).")
    ] = 0.0,
    as_json: JsonOption = False,
    show_personal: ShowPersonalOption = False,
    timeout: TimeoutOption = 5.0,
) -> None:
    """Print events as they are published, in order per source, gaps filled by replay.
    Personal data in payloads is masked unless --show-personal is given.

    Example:

        powerbus events tail --bus 127.0.0.1:50051 --topic metering. --json
    """
    show = _Show(as_json=as_json, personal=show_personal)
    with exit_on_error(bus):
        run_event_loop(_tail(events_out, bus, topic, count, seconds, show, timeout))


async def _tail(
    events_out: str,
    bus: str,
    topic: str,
    count: int,
    seconds: float,
    show: _Show,
    timeout: float,
) -> None:
    settings = SubscriberSettings(call_timeout=timeout)
    stop_at = time.monotonic() + seconds if seconds else float("inf")
    printed = 0
    async with Subscriber(
        events_out=[events_out] if events_out else (),
        bus=bus,
        prefixes=[topic],
        from_beginning=False,
        settings=settings,
    ) as sub:
        while time.monotonic() < stop_at and not (count and printed >= count):
            for env in await sub.receive(timeout=min(0.5, max(0.0, stop_at - time.monotonic()))):
                _print(env, show)
                printed += 1
                if count and printed >= count:
                    break


@events_app.command("replay")
def replay_command(
    source: Annotated[str, typer.Option("--source", help="The publishing node's id.")],
    from_sequence: Annotated[
        int, typer.Option("--from", help="First sequence number to replay.", min=1)
    ],
    to_sequence: Annotated[
        int, typer.Option("--to", help="Last sequence number (0: the latest stored).", min=0)
    ] = 0,
    bus: BusOption = "127.0.0.1:50051",
    as_json: JsonOption = False,
    show_personal: ShowPersonalOption = False,
    timeout: TimeoutOption = 60.0,
) -> None:
    """Print a source's stored events from sequence --from on, as published. Personal
    data in payloads is masked unless --show-personal is given.

    Example:

        powerbus events replay --bus 127.0.0.1:50051 --source billing-1 --from 120 --json
    """
    show = _Show(as_json=as_json, personal=show_personal)
    with exit_on_error(bus):
        run_event_loop(_replay(bus, source, from_sequence, to_sequence, show, timeout))


async def _replay(
    bus: str, source: str, first: int, last: int, show: _Show, timeout: float
) -> None:
    async with grpc.aio.insecure_channel(bus) as channel:
        client = ReplayClient(channel, timeout=timeout, replay_timeout=timeout)
        async for env in client.replay(source, first, last):
            _print(env, show)


def _print(env: events_pb2.Envelope, show: _Show) -> None:
    if show.as_json:
        try:
            if show.personal:
                data = MessageToDict(env, preserving_proto_field_name=True)
            else:
                data = masked_json(env)
        except (TypeError, KeyError):  # a payload type this CLI does not know
            data = {
                "topic": env.topic,
                "source": env.source,
                "sequence": str(env.sequence),
                "event_id": env.event_id,
                "payload_type": env.payload.type_url,
            }
        typer.echo(json.dumps(data, ensure_ascii=False))
        return
    when = env.time.ToDatetime().strftime("%H:%M:%S.%f")[:-3]
    kind = env.payload.type_url.rsplit("/", 1)[-1].rsplit(".", 1)[-1]
    typer.echo(f"{when} {env.source}#{env.sequence} {env.topic} {kind}")
