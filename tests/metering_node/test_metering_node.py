"""The metering node against the meter farm over real sockets: polls every second are
stored and published, the Metering service answers as its proto documents, the
``powerbus meters`` commands work against it, and faults on a line are estimated and
reported without stopping the line's other meters.

One bus, one farm and one node serve the whole module (starting them is most of the
time); the failover test adds two instances of its own on the same farm; the fault
test runs last because it leaves faults on two meters.
"""

from __future__ import annotations

import itertools
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from metering_node_support import (
    Farm,
    farm_ready,
    header,
    intervals,
    launch_farm,
    launch_metering,
    stub,
    wait_for,
)
from typer.testing import CliRunner

from powerbus.bus.cli import app
from powerbus.bus.kernel.database import create_engine
from powerbus.bus.kernel.supervisor import BusHandle, NodeHandle, ProcessGroup
from powerbus.common.v1 import common_pb2
from powerbus.events.v1 import events_pb2, events_pb2_grpc
from powerbus.metering.v1 import metering_pb2 as pb
from powerbus.metering.v1 import metering_pb2_grpc

FORWARD_BULK = "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
FORWARD_DELTA = "0.0.0.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"


@dataclass
class Running:
    group: ProcessGroup
    bus: BusHandle
    farm: Farm
    node: NodeHandle
    channel: grpc.Channel
    db: Path

    @property
    def metering(self) -> metering_pb2_grpc.MeteringStub:
        return stub(self.channel)

    def meter_ids(self) -> list[str]:
        return [row["meter_id"] for row in self.farm.rows()]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    directory = tmp_path_factory.mktemp("metering-node")
    group = ProcessGroup(directory=directory)
    try:
        launched = launch_farm(group, meters=8, gateways=4)
        bus = group.start_bus()
        farm = farm_ready(launched)
        db = directory / "metering.db"
        node = launch_metering(group, bus, farm, db=f"sqlite:///{db}")
        node.wait_ready()
        with grpc.insecure_channel(bus.grpc) as channel:
            yield Running(group, bus, farm, node, channel, db)
    finally:
        group.close()


def replay(bus: BusHandle, source: str) -> list[events_pb2.Envelope]:
    with grpc.insecure_channel(bus.grpc) as channel:
        replayer = events_pb2_grpc.EventReplayStub(channel)
        try:
            return list(
                replayer.Replay(
                    events_pb2.ReplayRequest(source=source, from_sequence=1), timeout=10
                )
            )
        except grpc.RpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND:
                return []
            raise


def test_polls_store_valid_intervals_of_every_meter_and_publish_them(running: Running) -> None:
    meters = running.meter_ids()

    def every_meter_has_two_valid() -> bool:
        got = intervals(running.metering, meters)
        return all(
            sum(1 for r in got[m] if r.quality.code == pb.QUALITY_CODE_VALID) >= 2 for m in meters
        )

    wait_for(every_meter_has_two_valid, what="two VALID intervals of every meter")
    got = intervals(running.metering, meters)
    for meter_id, values in got.items():
        ends = [r.time_stamp.seconds for r in values]
        assert ends == sorted(set(ends)), f"{meter_id}: repeated or unordered intervals"
        assert all(b - a == 1 for a, b in itertools.pairwise(ends)), (
            f"{meter_id}: an interval is missing between {ends[0]} and {ends[-1]}"
        )

    def published() -> list[events_pb2.ReadingsReceived]:
        found = []
        for env in replay(running.bus, "metering-1"):
            if env.topic == "metering.readings.received":
                payload = events_pb2.ReadingsReceived()
                env.payload.Unpack(payload)
                found.append(payload)
        return found

    events = wait_for(published, what="metering.readings.received on the bus")
    assert {m for e in events for m in e.meter_ids} == set(meters)
    assert all(e.batch_source == "metering-1" and e.message_id.startswith("poll/") for e in events)


def test_read_meter_returns_the_forward_register_first_and_is_idempotent(running: Running) -> None:
    metering = running.metering
    dlt645 = next(r["meter_id"] for r in running.farm.rows() if r["model"] == "dlt645")
    request = pb.ReadMeterRequest(
        header=header("read-1"), meter=common_pb2.MeterRef(meter_id=dlt645)
    )
    first = metering.ReadMeter(request, timeout=15)
    bulk = first.meter_reading.readings[0].reading_type
    assert (bulk.mrid, bulk.unit, bulk.accumulation, bulk.flow_direction, bulk.tou) == (
        FORWARD_BULK,
        pb.UNIT_KWH,
        pb.ACCUMULATION_BULK,
        pb.FLOW_DIRECTION_FORWARD,
        0,
    )
    rates = [r for r in first.meter_reading.readings if r.reading_type.tou]
    assert [r.reading_type.tou for r in rates] == [1, 2, 3, 4]
    total = first.meter_reading.readings[0].value
    assert abs(sum(r.value for r in rates) - total) < 0.05  # the rates add up to the total
    assert any(
        r.reading_type.accumulation == pb.ACCUMULATION_INSTANTANEOUS
        for r in first.meter_reading.readings
    )
    again = metering.ReadMeter(request, timeout=15)
    assert again.duplicate and again.meter_reading == first.meter_reading
    other = pb.ReadMeterRequest(
        header=header("read-1"), meter=common_pb2.MeterRef(meter_id=running.meter_ids()[0])
    )
    with pytest.raises(grpc.RpcError) as reused:
        metering.ReadMeter(other, timeout=15)
    assert reused.value.code() is grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.RpcError) as unknown:
        metering.ReadMeter(
            pb.ReadMeterRequest(
                header=header("read-2"), meter=common_pb2.MeterRef(meter_id="NOPE")
            ),
            timeout=15,
        )
    assert unknown.value.code() is grpc.StatusCode.NOT_FOUND


def test_meters_are_managed_and_submitted_readings_validated_once(running: Running) -> None:
    metering = running.metering
    listed = metering.ListMeters(pb.ListMetersRequest(), timeout=10)
    assert sorted(m.meter_id for m in listed.meters) == running.meter_ids()
    taken = listed.meters[0]
    clash = pb.Meter(meter_id="X-CLASH", kind=taken.kind, address=taken.address,
                     channel=taken.channel, model=taken.model,
                     pulses_per_kwh=taken.pulses_per_kwh)  # fmt: skip
    with pytest.raises(grpc.RpcError) as exists:
        metering.PutMeter(pb.PutMeterRequest(meter=clash), timeout=10)
    assert exists.value.code() is grpc.StatusCode.ALREADY_EXISTS
    pulse = pb.Meter(
        meter_id="X-PULSE",
        kind=pb.METER_KIND_PULSE_CHANNEL,
        address="modbus://127.0.0.1:9/9",
        channel=3,
        model="PULSE8",
    )
    with pytest.raises(grpc.RpcError) as bad:
        metering.PutMeter(pb.PutMeterRequest(meter=pulse), timeout=10)
    assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "pulses_per_kwh" in (bad.value.details() or "")

    # A meter read by another system: kept INACTIVE so the poller leaves it alone.
    meter = pb.Meter(
        meter_id="X-IMPORT",
        kind=pb.METER_KIND_MODBUS,
        address="modbus://127.0.0.1:9/7",
        model="SDM120",
        state=pb.METER_STATE_INACTIVE,
    )
    stored = metering.PutMeter(pb.PutMeterRequest(meter=meter), timeout=10)
    assert stored.interval.seconds == 1  # the node's interval when none is given
    assert metering.GetMeter(pb.GetMeterRequest(meter_id="X-IMPORT"), timeout=10) == stored

    t0 = 1_796_400_000  # 2026-12-04T16:00Z, a whole quarter hour
    block = pb.IntervalBlock(reading_type=pb.ReadingType(mrid=FORWARD_DELTA))
    for k, kwh in ((1, 0.25), (2, 0.5), (4, 0.75)):  # the third interval is missing
        block.interval_readings.add(value=kwh).time_stamp.FromSeconds(t0 + k)
    batch = pb.MeterReading(meter=common_pb2.MeterRef(meter_id="X-IMPORT"))
    batch.interval_blocks.append(block)
    batch.values_interval.start.FromSeconds(t0)
    batch.values_interval.end.FromSeconds(t0 + 4)
    submit = pb.SubmitMeterReadingsRequest(
        header=header("batch-1", "legacy"), meter_readings=[batch]
    )
    first = metering.SubmitMeterReadings(submit, timeout=10)
    assert (first.accepted, first.estimated, first.rejected) == (3, 1, 0)
    assert first.result == common_pb2.REPLY_RESULT_OK and not first.duplicate
    again = metering.SubmitMeterReadings(submit, timeout=10)
    assert again.duplicate and again.accepted == 3
    changed = pb.SubmitMeterReadingsRequest()
    changed.CopyFrom(submit)
    changed.meter_readings[0].interval_blocks[0].interval_readings[0].value = 9.0
    with pytest.raises(grpc.RpcError) as reused:
        metering.SubmitMeterReadings(changed, timeout=10)
    assert reused.value.code() is grpc.StatusCode.ALREADY_EXISTS

    period = common_pb2.Period()
    period.start.FromSeconds(t0)
    period.end.FromSeconds(t0 + 10)
    got = metering.GetMeterReadings(
        pb.GetMeterReadingsRequest(
            meters=[common_pb2.MeterRef(meter_id="X-IMPORT")], period=period
        ),
        timeout=10,
    )
    values = [
        (r.value, r.quality.code)
        for r in got.meter_readings[0].interval_blocks[0].interval_readings
    ]
    assert values == [
        (0.25, pb.QUALITY_CODE_VALID),
        (0.5, pb.QUALITY_CODE_VALID),
        (0.625, pb.QUALITY_CODE_ESTIMATED),  # linear between 0.5 and 0.75
        (0.75, pb.QUALITY_CODE_VALID),
    ]
    summary = metering.SummarizeUsage(
        pb.SummarizeUsageRequest(meters=[common_pb2.MeterRef(meter_id="X-IMPORT")], period=period),
        timeout=10,
    )
    assert summary.summaries[0].kwh == pytest.approx(2.125)
    assert summary.summaries[0].values_estimated == 1

    ping = pb.ExecuteEndDeviceControlRequest(
        header=header("ctl-1"),
        control=pb.EndDeviceControl(
            action=pb.CONTROL_ACTION_PING,
            end_devices=[common_pb2.MeterRef(meter_id=m) for m in running.meter_ids()[:2]],
        ),
    )
    done = metering.ExecuteEndDeviceControl(ping, timeout=15)
    assert [r.outcome for r in done.results] == [pb.CONTROL_OUTCOME_SUCCEEDED] * 2
    assert done.result == common_pb2.REPLY_RESULT_OK
    assert metering.ExecuteEndDeviceControl(ping, timeout=15).duplicate


def test_controls_switch_and_sync_meters_and_say_what_they_cannot_do(running: Running) -> None:
    rows = running.farm.rows()
    dlt645 = next(r["meter_id"] for r in rows if r["model"] == "dlt645")
    sdm = next(r["meter_id"] for r in rows if r["model"].startswith("sdm"))

    def control(message_id: str, action: int, *meters: str) -> pb.ExecuteEndDeviceControlResponse:
        request = pb.ExecuteEndDeviceControlRequest(
            header=header(message_id),
            control=pb.EndDeviceControl(
                action=action,  # type: ignore[arg-type]
                end_devices=[common_pb2.MeterRef(meter_id=m) for m in meters],
            ),
        )
        return running.metering.ExecuteEndDeviceControl(request, timeout=15)

    synced = control("sync-1", pb.CONTROL_ACTION_CLOCK_SYNC, dlt645, sdm)
    assert [r.outcome for r in synced.results] == [
        pb.CONTROL_OUTCOME_SUCCEEDED,
        pb.CONTROL_OUTCOME_UNSUPPORTED,
    ]
    assert synced.result == common_pb2.REPLY_RESULT_PARTIAL
    assert abs(synced.results[0].clock_offset.ToTimedelta().total_seconds()) < 120
    cut = control("cut-1", pb.CONTROL_ACTION_DISCONNECT, dlt645, sdm)
    assert [(r.outcome, r.connect_state) for r in cut.results] == [
        (pb.CONTROL_OUTCOME_SUCCEEDED, pb.CONNECT_STATE_DISCONNECTED),
        (pb.CONTROL_OUTCOME_UNSUPPORTED, pb.CONNECT_STATE_UNSPECIFIED),
    ]
    assert "not supported" in cut.results[1].detail
    meter = running.metering.GetMeter(pb.GetMeterRequest(meter_id=dlt645), timeout=10)
    assert meter.connect_state == pb.CONNECT_STATE_DISCONNECTED
    assert control("cut-1", pb.CONTROL_ACTION_DISCONNECT, dlt645, sdm).duplicate
    back = control("back-1", pb.CONTROL_ACTION_CONNECT, dlt645)
    assert back.results[0].connect_state == pb.CONNECT_STATE_CONNECTED
    meter = running.metering.GetMeter(pb.GetMeterRequest(meter_id=dlt645), timeout=10)
    assert meter.connect_state == pb.CONNECT_STATE_CONNECTED
    with pytest.raises(grpc.RpcError) as unknown:
        control("ping-x", pb.CONTROL_ACTION_PING, dlt645, "NOPE")
    assert unknown.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as empty:
        control("ping-y", pb.CONTROL_ACTION_PING)
    assert empty.value.code() is grpc.StatusCode.INVALID_ARGUMENT


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def cli(*args: str) -> Ran:
    """``powerbus meters ARGS`` in this process (the real command, over real sockets);
    a subprocess per call would spend seconds importing."""
    result = CliRunner().invoke(app, ["meters", *args])
    return Ran(result.exit_code, result.stdout, result.stderr)


def test_meters_commands_against_the_running_node(running: Running) -> None:
    bus = running.bus.grpc
    listed = cli("list", "--bus", bus)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert sum(1 for line in lines if line.startswith("M0")) == 8
    as_json = json.loads(cli("list", "--bus", bus, "--json").stdout)
    assert {m["meter_id"] for m in as_json} >= set(running.meter_ids())

    meter_id = running.meter_ids()[0]
    read = cli("read", meter_id, "--bus", bus)
    assert read.returncode == 0, read.stderr
    assert "kWh" in read.stdout
    read_json = json.loads(cli("read", meter_id, "--bus", bus, "--json").stdout)
    assert read_json["meter_reading"]["readings"][0]["reading_type"]["mrid"] == FORWARD_BULK

    readings = cli("readings", meter_id, "--since", "1d", "--bus", bus)
    assert readings.returncode == 0, readings.stderr
    assert "valid" in readings.stdout
    assert all(len(line) <= 80 for line in readings.stdout.splitlines())
    readings_json = json.loads(
        cli("readings", meter_id, "--since", "1d", "--bus", bus, "--json").stdout
    )
    blocks = readings_json["meter_readings"][0]["interval_blocks"]
    assert blocks[0]["reading_type"]["mrid"] == FORWARD_DELTA

    unknown = cli("read", "NOPE", "--bus", bus)
    assert unknown.returncode == 1 and "NOT_FOUND" in unknown.stderr and "NOPE" in unknown.stderr
    since = cli("readings", meter_id, "--since", "yesterday", "--bus", bus)
    assert since.returncode == 1 and "--since" in since.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{s.getsockname()[1]}"
    nobody = cli("list", "--bus", closed, "--timeout", "3")
    assert nobody.returncode == 1 and "cannot reach the bus" in nobody.stderr


TTL = 2.0


def leases(engine: sa.Engine) -> dict[str, tuple[str | None, datetime, datetime]]:
    """gateway → (owner, expires_at, acquired_at) of the live leases."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT gateway, owner, expires_at, acquired_at FROM metering_line_leases")
        ).all()
    return {g: (o, _utc(e), _utc(a)) for g, o, e, a in rows}


def _utc(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite hands back text
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def owners(engine: sa.Engine) -> dict[str, str | None]:
    now = datetime.now(timezone.utc)
    return {g: (o if e > now else None) for g, (o, e, _) in leases(engine).items()}


def test_kill_9_of_one_of_two_instances_moves_its_lines_without_losing_an_interval(
    running: Running, db_url: str
) -> None:
    """Two more instances on a database of their own: SQLite shared by two processes, and
    PostgreSQL (a schema of its own) when POWERBUS_TEST_PG_URL is set."""
    group, bus, farm = running.group, running.bus, running.farm
    common = {"line_lease": f"{TTL:g}s", "db": db_url}
    a = launch_metering(group, bus, farm, node_id="metering-a", **common)
    b = launch_metering(group, bus, farm, node_id="metering-b", **common)
    a.wait_ready()
    b.wait_ready()
    engine = create_engine(db_url)
    try:
        wait_for(
            lambda: (
                sorted(o or "" for o in owners(engine).values())
                == ["metering-a"] * 2 + ["metering-b"] * 2
            ),
            what="two lines for each instance",
        )
        meters = [r["meter_id"] for r in farm.rows()]

        def counts() -> dict[str, int]:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.text("SELECT meter_id, COUNT(*) FROM metering_intervals GROUP BY meter_id")
                ).all()
            return {m: int(n) for m, n in rows}

        wait_for(lambda: all(counts().get(m, 0) >= 2 for m in meters), what="intervals")
        lost = sorted(g for g, o in owners(engine).items() if o == "metering-a")
        # Mid-poll: just after an interval end, while the lines are being read.
        time.sleep(1.15 - time.time() % 1.0)
        a.kill()
        killed = datetime.now(timezone.utc)

        def taken_over() -> dict[str, datetime] | None:
            held = leases(engine)
            if all(held[g][0] == "metering-b" for g in lost):
                return {g: held[g][2] for g in lost}
            return None

        taken = wait_for(taken_over, timeout=TTL * 5, what="metering-b to take the lines over")
        # The lease lapses at most TTL after the kill; the survivor looks every TTL/3.
        for gateway, at in taken.items():
            delay = (at - killed).total_seconds()
            print(f"{gateway} taken over {delay:.2f}s after the kill (lease {TTL:g}s)")
            assert delay <= TTL + TTL / 3 + 1.0, f"{gateway} taken over after {delay:.1f}s"
        after = max(taken.values()).timestamp() + 2

        def past_takeover() -> bool:
            with engine.connect() as conn:
                low = conn.execute(
                    sa.text(
                        "SELECT meter_id, MAX(end_at) FROM metering_intervals GROUP BY meter_id"
                    )
                ).all()
            return len(low) == len(meters) and all(_utc(t).timestamp() >= after for _, t in low)

        wait_for(past_takeover, what="intervals well after the takeover")
        with engine.connect() as conn:
            spans = conn.execute(
                sa.text(
                    "SELECT meter_id, COUNT(*), COUNT(DISTINCT end_at), MIN(end_at), MAX(end_at)"
                    " FROM metering_intervals GROUP BY meter_id"
                )
            ).all()
        for meter_id, rows, distinct, first, last in spans:
            expected = int((_utc(last) - _utc(first)).total_seconds()) + 1
            assert rows == distinct == expected, (
                f"{meter_id}: {rows} rows, {distinct} distinct, {expected} intervals"
                f" from {first} to {last}"
            )
    finally:
        engine.dispose()
        a.kill()
        b.stop()  # the module's processes outlive this test; these two must not


def test_faults_are_estimated_and_reported_without_stopping_the_line(running: Running) -> None:
    rows = running.farm.rows()
    line = rows[0]["gateway"]
    same_line = [r["meter_id"] for r in rows if r["gateway"] == line]
    garbage = same_line[0]
    neighbours = same_line[1:]
    silent = next(r["meter_id"] for r in rows if r["gateway"] != line)
    assert neighbours, "the test needs two meters on one line"
    running.farm.control(op="fault", meter=garbage, fault="garbage")
    running.farm.control(op="fault", meter=silent, fault="no-answer")
    since = time.time() + 1

    def after(values: list[pb.IntervalReading]) -> list[pb.IntervalReading]:
        return [r for r in values if r.time_stamp.seconds > since]

    def settled() -> dict[str, list[pb.IntervalReading]] | None:
        got = intervals(running.metering, [garbage, silent, *neighbours])
        if all(len(after(got[m])) >= 3 for m in got):
            return got
        return None

    got = wait_for(settled, what="three intervals of each meter after the faults")
    for meter_id in (garbage, silent):
        late = after(got[meter_id])
        assert all(r.quality.code == pb.QUALITY_CODE_ESTIMATED for r in late), meter_id
    for meter_id in neighbours:
        late = after(got[meter_id])
        valid = [r for r in late if r.quality.code == pb.QUALITY_CODE_VALID]
        assert len(valid) >= 2, f"{meter_id} stopped being read: {late}"

    reported = running.metering.ListEndDeviceEvents(
        pb.ListEndDeviceEventsRequest(names=["no_response"]), timeout=10
    )
    assert {e.meter.meter_id for e in reported.end_device_events} >= {garbage, silent}

    def published() -> set[str]:
        found = set()
        for env in replay(running.bus, "metering-1"):
            if env.topic == "metering.end_device_event.reported":
                payload = events_pb2.EndDeviceEventReported()
                env.payload.Unpack(payload)
                found.add(payload.end_device_event.meter.meter_id)
        return found if {garbage, silent} <= found else set()

    wait_for(published, what="metering.end_device_event.reported for both meters")
