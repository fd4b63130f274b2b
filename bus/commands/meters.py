"""``powerbus meters``: operators' view of the metering node, through the bus.

``read`` reads a meter now, ``list`` lists the configured meters, ``readings`` shows a
meter's stored interval values; each prints a table that fits 80 columns, or JSON.
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

import grpc
import typer
from google.protobuf.json_format import MessageToDict

from powerbus.bus.commands.common import BusOption, JsonOption, bus_channel, exit_on_error
from powerbus.bus.kernel.config import parse_duration
from powerbus.bus.kernel.errors import ConfigError, InvalidArgument
from powerbus.common.v1 import common_pb2
from powerbus.metering.v1 import metering_pb2 as pb
from powerbus.metering.v1 import metering_pb2_grpc

__all__ = ["meters_app", "parse_since"]

meters_app = typer.Typer(
    help="Meters and their readings, through the metering node.\n\n"
    "Example: powerbus meters readings M00001 --since 1d --bus 127.0.0.1:50051",
    no_args_is_help=True,
    add_completion=False,
)

TimeoutOption = Annotated[
    float, typer.Option("--timeout", help="Deadline of each call, seconds.", min=0.001)
]
_WIDTH = 80
_DAYS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*d\s*$")


def parse_since(text: str) -> timedelta:
    """``1d``, ``12h``, ``30m``, ``90s``: how far back ``--since`` reaches.

    >>> parse_since("1d"), parse_since("90m")
    (datetime.timedelta(days=1), datetime.timedelta(seconds=5400))
    """
    days = _DAYS.match(text)
    try:
        span = timedelta(days=float(days[1])) if days else parse_duration(text, field="--since")
    except ConfigError:
        raise InvalidArgument("--since", f"not a duration like 1d, 12h, 30m: {text!r}") from None
    if span <= timedelta(0):
        raise InvalidArgument("--since", f"must be positive, got {text!r}")
    return span


def _stub(channel: grpc.Channel) -> metering_pb2_grpc.MeteringStub:
    return metering_pb2_grpc.MeteringStub(channel)


def _json(message: Any) -> str:
    return json.dumps(
        MessageToDict(message, preserving_proto_field_name=True),
        indent=2,
        ensure_ascii=False,
    )


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _columns(text: str) -> int:
    """Terminal columns of ``text``: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    """``text`` cut or padded to exactly ``width`` terminal columns."""
    while _columns(text) > width:
        text = text[:-2] + "…"
    return text + " " * (width - _columns(text))


_UNITS = {
    pb.UNIT_KWH: "kWh",
    pb.UNIT_KVARH: "kvarh",
    pb.UNIT_KW: "kW",
    pb.UNIT_KVAR: "kvar",
    pb.UNIT_KVA: "kVA",
    pb.UNIT_VOLT: "V",
    pb.UNIT_AMPERE: "A",
    pb.UNIT_HERTZ: "Hz",
    pb.UNIT_POWER_FACTOR: "PF",
    pb.UNIT_PULSE: "pulses",
}


def _when(stamp: Any) -> str:
    if not stamp.seconds and not stamp.nanos:
        return "-"
    return f"{stamp.ToDatetime(tzinfo=timezone.utc):%m-%d %H:%M:%S}"


@meters_app.command("read")
def read_command(
    meter_id: Annotated[str, typer.Argument(metavar="METER_ID", help="The meter to read.")],
    bus: BusOption = "127.0.0.1:50051",
    as_json: JsonOption = False,
    timeout: TimeoutOption = 15.0,
) -> None:
    """Read a meter now (on-demand read): energy registers and instantaneous values.

    Example:

        powerbus meters read M00001 --bus 127.0.0.1:50051
    """
    request = pb.ReadMeterRequest(
        header=common_pb2.MessageHeader(
            verb=common_pb2.VERB_GET,
            noun="MeterReadings",
            message_id=str(uuid.uuid4()),
            source="powerbus-cli",
        ),
        meter=common_pb2.MeterRef(meter_id=meter_id),
    )
    with exit_on_error(bus), bus_channel(bus) as channel:
        reply = _stub(channel).ReadMeter(request, timeout=timeout)
    if as_json:
        typer.echo(_json(reply))
        return
    reading = reply.meter_reading
    offset = reply.clock_offset.ToTimedelta().total_seconds()
    when = _when(reading.values_interval.start)
    typer.echo(f"meter {meter_id}  {reading.meter.address}  read at {when} UTC")
    if reply.HasField("clock_offset"):
        typer.echo(f"meter clock {offset:+.0f} s from the node's")
    typer.echo(f"{'READING':<40} {'VALUE':>14}  {'UNIT':<6} {'QUALITY':<8}")
    for r in reading.readings:
        unit = _UNITS.get(r.reading_type.unit, "")
        quality = pb.QualityCode.Name(r.quality.code).removeprefix("QUALITY_CODE_").lower()
        name = r.reading_type.description or r.reading_type.mrid
        typer.echo(f"{_pad(name, 40)} {r.value:>14.3f}  {unit:<6} {quality:<8}")


@meters_app.command("list")
def list_command(
    bus: BusOption = "127.0.0.1:50051",
    account: Annotated[str, typer.Option("--account", help="Only this account's meters.")] = "",
    address: Annotated[
        str, typer.Option("--address", help="Only meters at this address (a terminal).")
    ] = "",
    as_json: JsonOption = False,
    timeout: TimeoutOption = 15.0,
) -> None:
    """List the configured meters: kind, model, address, state, last read (UTC).

    Example:

        powerbus meters list --bus 127.0.0.1:50051
    """
    with exit_on_error(bus), bus_channel(bus) as channel:
        meters = list(_all_meters(_stub(channel), account, address, timeout))
    if as_json:
        typer.echo(
            json.dumps(
                [MessageToDict(m, preserving_proto_field_name=True) for m in meters],
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    typer.echo(f"{'METER':<10} {'KIND':<6} {'MODEL':<6} {'ADDRESS':<31} {'STATE':<8} {'LAST READ'}")
    for m in meters:
        kind = {
            pb.METER_KIND_MODBUS: "modbus",
            pb.METER_KIND_PULSE_CHANNEL: "pulse",
            pb.METER_KIND_DLT645: "dlt645",
        }.get(m.kind, "?")
        where = m.address + (f" ch{m.channel}" if m.channel else "")
        state = pb.MeterState.Name(m.state).removeprefix("METER_STATE_").lower()
        typer.echo(
            f"{_cut(m.meter_id, 10):<10} {kind:<6} {_cut(m.model, 6):<6} {_cut(where, 31):<31}"
            f" {state:<8} {_when(m.last_read_at)}"
        )
    typer.echo(f"{len(meters)} meter(s)")


def _all_meters(
    stub: metering_pb2_grpc.MeteringStub, account: str, address: str, timeout: float
) -> Iterator[pb.Meter]:
    token = ""
    for _ in range(10_000):  # bounded: 10,000 pages of 500
        page = stub.ListMeters(
            pb.ListMetersRequest(
                account_id=account,
                address=address,
                page=common_pb2.PageRequest(page_size=500, page_token=token),
            ),
            timeout=timeout,
        )
        yield from page.meters
        token = page.page.next_page_token
        if not token:
            return


@meters_app.command("readings")
def readings_command(
    meter_id: Annotated[str, typer.Argument(metavar="METER_ID", help="The meter.")],
    bus: BusOption = "127.0.0.1:50051",
    since: Annotated[str, typer.Option("--since", help="How far back: 1d, 12h, 30m, 90s.")] = "1d",
    as_json: JsonOption = False,
    timeout: TimeoutOption = 15.0,
) -> None:
    """A meter's stored interval values (kWh per interval, quality, VEE rule) and
    register reads since a time ago, oldest first.

    Example:

        powerbus meters readings M00001 --since 12h --bus 127.0.0.1:50051
    """
    with exit_on_error(bus):
        span = parse_since(since)
        end = datetime.now(timezone.utc) + timedelta(seconds=1)
        period = common_pb2.Period()
        period.start.FromDatetime(end - span)
        period.end.FromDatetime(end)
        with bus_channel(bus) as channel:
            stub = _stub(channel)
            pages = []
            token = ""
            for _ in range(10_000):
                page = stub.GetMeterReadings(
                    pb.GetMeterReadingsRequest(
                        meters=[common_pb2.MeterRef(meter_id=meter_id)],
                        period=period,
                        page=common_pb2.PageRequest(page_size=5000, page_token=token),
                    ),
                    timeout=timeout,
                )
                pages.append(page)
                token = page.page.next_page_token
                if not token:
                    break
    if as_json:
        merged = pb.GetMeterReadingsResponse()
        for page in pages:
            merged.meter_readings.extend(page.meter_readings)
        typer.echo(_json(merged))
        return
    _print_readings(meter_id, pages)


def _print_readings(meter_id: str, pages: list[pb.GetMeterReadingsResponse]) -> None:
    intervals = [
        ir
        for page in pages
        for mr in page.meter_readings
        for block in mr.interval_blocks
        for ir in block.interval_readings
    ]
    registers = [r for page in pages for mr in page.meter_readings for r in mr.readings]
    typer.echo(f"meter {meter_id}: {len(intervals)} interval value(s), times UTC (interval end)")
    typer.echo(f"{'END':<14} {'kWh':>12}  {'QUALITY':<11} {'RULE':<20} {'DETAIL'}")
    for ir in intervals:
        quality = pb.QualityCode.Name(ir.quality.code).removeprefix("QUALITY_CODE_").lower()
        rule = pb.VeeRule.Name(ir.quality.rule).removeprefix("VEE_RULE_").lower()
        rule = "" if rule == "unspecified" else rule
        line = f"{_when(ir.time_stamp):<14} {ir.value:>12.3f}  {quality:<11} {rule:<20} "
        typer.echo(line + _cut(ir.quality.detail, max(_WIDTH - len(line), 1)))
    if registers:
        typer.echo(f"\n{len(registers)} register read(s); last:")
        typer.echo(f"{'READ AT':<14} {'VALUE':>14}  {'READING TYPE'}")
        for r in registers[-5:]:
            typer.echo(
                f"{_when(r.time_stamp):<14} {r.value:>14.3f}  {_cut(r.reading_type.mrid, 48)}"
            )
