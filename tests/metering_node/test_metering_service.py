"""The stored-data half of the Metering service in-process, on SQLite and PostgreSQL:
the errors the proto documents, paging, idempotency and deduplication."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from powerbus.bus.kernel.database import create_engine
from powerbus.bus.kernel.errors import AlreadyExists, InvalidArgument, NotFound
from powerbus.common.v1 import common_pb2
from powerbus.metering.v1 import metering_pb2 as pb
from powerbus.nodes.metering.events import MeteringEvents
from powerbus.nodes.metering.journal import DeviceEvents, RequestKeys
from powerbus.nodes.metering.meters import MeterCatalog
from powerbus.nodes.metering.service import MeteringService
from powerbus.nodes.metering.store import FORWARD_DELTA_KWH, ReadingStore
from powerbus.nodes.metering.vee import VeeConfig
from powerbus.nodes.sdk.events import Outbox, open_event_tables

T0 = 1_796_400_000  # 2026-12-04T16:00Z


@pytest.fixture
def service(db_url: str) -> Iterator[MeteringService]:
    engine = create_engine(db_url)
    store = ReadingStore(engine)
    store.migrate()
    open_event_tables(engine)
    events = MeteringEvents(DeviceEvents(engine), Outbox(engine, source="metering-t"))
    yield MeteringService(
        store=store,
        catalog=MeterCatalog(engine),
        keys=RequestKeys(engine),
        device_events=DeviceEvents(engine),
        events=events,
        vee=VeeConfig(),
        interval=timedelta(minutes=15),
        time_zone="Asia/Shanghai",
    )
    engine.dispose()


def sdm(meter_id: str, unit: int) -> pb.Meter:
    return pb.Meter(
        meter_id=meter_id,
        kind=pb.METER_KIND_MODBUS,
        address=f"modbus://127.0.0.1:9/{unit}",
        model="SDM120",
    )


def test_put_meter_names_what_is_wrong_and_refuses_a_taken_address(
    service: MeteringService,
) -> None:
    service.put_meter(pb.PutMeterRequest(meter=sdm("A", 1)))
    bad = {
        "meter.meter_id": pb.Meter(address="modbus://127.0.0.1:9/1", model="SDM120"),
        "meter.address": pb.Meter(meter_id="B", address="tcp://x", model="SDM120"),
        "meter.model": pb.Meter(meter_id="B", address="modbus://127.0.0.1:9/2", model="XYZ"),
        "meter.channel": pb.Meter(
            meter_id="B",
            kind=pb.METER_KIND_PULSE_CHANNEL,
            address="modbus://127.0.0.1:9/2",
            channel=9,
            model="PULSE8",
            pulses_per_kwh=1000,
        ),
    }
    for field, meter in bad.items():
        with pytest.raises(InvalidArgument) as error:
            service.put_meter(pb.PutMeterRequest(meter=meter))
        assert error.value.field == field
    with pytest.raises(AlreadyExists):
        service.put_meter(pb.PutMeterRequest(meter=sdm("B", 1)))
    replaced = sdm("A", 1)
    replaced.account_id = "0301234567"
    assert service.put_meter(pb.PutMeterRequest(meter=replaced)).account_id == "0301234567"


def test_two_instances_importing_the_same_meters_at_once_both_succeed(
    service: MeteringService,
) -> None:
    # Two instances start with the same meters file: neither may read the other's fresh
    # row as "another meter already uses this address".
    records = [sdm(f"M{i:03d}", i + 1) for i in range(60)]
    start = threading.Barrier(2, timeout=10)
    catalog = service.catalog

    def import_all() -> None:
        start.wait()
        catalog.put_many(records)

    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(import_all) for _ in range(2)]:
            done.result(timeout=60)
    page, _ = catalog.page(page_size=100)
    assert [m.meter_id for m in page] == [r.meter_id for r in records]


def test_list_meters_pages_through_every_meter_once(service: MeteringService) -> None:
    for i in range(5):
        service.put_meter(pb.PutMeterRequest(meter=sdm(f"M{i}", i + 1)))
    seen, token = [], ""
    for _ in range(10):
        page = service.list_meters(
            pb.ListMetersRequest(page=common_pb2.PageRequest(page_size=2, page_token=token))
        )
        seen += [m.meter_id for m in page.meters]
        token = page.page.next_page_token
        if not token:
            break
    assert seen == ["M0", "M1", "M2", "M3", "M4"]
    with pytest.raises(InvalidArgument):
        service.list_meters(pb.ListMetersRequest(page=common_pb2.PageRequest(page_token="zz")))
    with pytest.raises(NotFound):
        service.get_meter(pb.GetMeterRequest(meter_id="nope"))


def batch(meter_id: str, values: list[float]) -> pb.MeterReading:
    block = pb.IntervalBlock(reading_type=pb.ReadingType(mrid=FORWARD_DELTA_KWH))
    for k, kwh in enumerate(values, start=1):
        block.interval_readings.add(value=kwh).time_stamp.FromSeconds(T0 + 900 * k)
    return pb.MeterReading(meter=common_pb2.MeterRef(meter_id=meter_id), interval_blocks=[block])


def test_submit_checks_its_key_and_reports_item_errors(service: MeteringService) -> None:
    service.put_meter(pb.PutMeterRequest(meter=sdm("A", 1)))
    no_key = pb.SubmitMeterReadingsRequest(
        header=common_pb2.MessageHeader(source="s"), meter_readings=[batch("A", [0.1])]
    )
    with pytest.raises(InvalidArgument) as error:
        service.submit(no_key)
    assert error.value.field == "header.message_id"
    with pytest.raises(InvalidArgument):
        service.submit(
            pb.SubmitMeterReadingsRequest(
                header=common_pb2.MessageHeader(source="s", message_id="1")
            )
        )
    mixed = pb.SubmitMeterReadingsRequest(
        header=common_pb2.MessageHeader(source="s", message_id="2"),
        meter_readings=[batch("A", [0.1, 0.2]), batch("GHOST", [0.1])],
    )
    reply = service.submit(mixed)
    assert reply.result == common_pb2.REPLY_RESULT_PARTIAL
    assert [(e.index, e.field) for e in reply.errors] == [(1, "meter.meter_id")]
    assert reply.accepted == 2 and not reply.duplicate
    assert service.submit(mixed).duplicate
    # validating stores nothing
    before = service.store.readings(["A"], *_period())
    checked = service.validate(
        pb.ValidateMeterReadingsRequest(meter_readings=[batch("A", [0.1, 0.2, 0.3])])
    )
    assert checked.vee_results[0].accepted == 3
    assert service.store.readings(["A"], *_period()) == before
    with pytest.raises(NotFound):
        service.validate(pb.ValidateMeterReadingsRequest(meter_readings=[batch("GHOST", [1])]))


def _period() -> tuple[datetime, datetime]:
    start = datetime.fromtimestamp(T0, timezone.utc)
    return start, start + timedelta(days=1)


def test_get_readings_refuses_bad_requests(service: MeteringService) -> None:
    service.put_meter(pb.PutMeterRequest(meter=sdm("A", 1)))
    period = common_pb2.Period()
    period.start.FromSeconds(T0 + 3600)
    period.end.FromSeconds(T0)
    with pytest.raises(InvalidArgument):
        service.get_meter_readings(pb.GetMeterReadingsRequest(period=period))
    with pytest.raises(InvalidArgument):
        service.get_meter_readings(
            pb.GetMeterReadingsRequest(meters=[common_pb2.MeterRef(meter_id="A")], period=period)
        )
    period.end.FromSeconds(T0 + 7200)
    with pytest.raises(NotFound):
        service.get_meter_readings(
            pb.GetMeterReadingsRequest(
                meters=[common_pb2.MeterRef(meter_id="GHOST")], period=period
            )
        )


def event(mrid: str, seconds: int, meter_id: str = "A") -> pb.EndDeviceEvent:
    e = pb.EndDeviceEvent(
        mrid=mrid,
        severity=pb.EVENT_SEVERITY_MAJOR,
        event_type=pb.EndDeviceEventType(name="power_off"),
        meter=common_pb2.MeterRef(meter_id=meter_id),
    )
    e.created_date_time.FromSeconds(T0 + seconds)
    return e


def test_end_device_events_are_deduplicated_and_listed_newest_first(
    service: MeteringService,
) -> None:
    first = service.submit_events(
        pb.SubmitEndDeviceEventsRequest(
            header=common_pb2.MessageHeader(source="s", message_id="e1"),
            end_device_events=[event("e-1", 1), event("e-2", 2), pb.EndDeviceEvent(mrid="x")],
        )
    )
    assert (first.accepted, first.rejected) == (2, 1)
    assert first.result == common_pb2.REPLY_RESULT_PARTIAL
    service.submit_events(
        pb.SubmitEndDeviceEventsRequest(
            header=common_pb2.MessageHeader(source="s", message_id="e2"),
            end_device_events=[event("e-2", 2), event("e-3", 3)],
        )
    )
    seen, token = [], ""
    for _ in range(10):
        page = service.list_events(
            pb.ListEndDeviceEventsRequest(
                page=common_pb2.PageRequest(page_size=2, page_token=token)
            )
        )
        seen += [e.mrid for e in page.end_device_events]
        token = page.page.next_page_token
        if not token:
            break
    assert seen == ["e-3", "e-2", "e-1"]
    published = service.events.outbox.pending(after=0) if service.events.outbox else []
    assert [r.topic for r in published].count("metering.end_device_event.reported") == 3
    with pytest.raises(AlreadyExists):
        service.submit_events(
            pb.SubmitEndDeviceEventsRequest(
                header=common_pb2.MessageHeader(source="s", message_id="e1"),
                end_device_events=[event("e-9", 9)],
            )
        )


def test_summaries_refuse_an_unknown_zone_and_meter(service: MeteringService) -> None:
    service.put_meter(pb.PutMeterRequest(meter=sdm("A", 1)))
    period = common_pb2.Period()
    period.start.FromSeconds(T0)
    period.end.FromSeconds(T0 + 3600)
    meters = [common_pb2.MeterRef(meter_id="A")]
    with pytest.raises(InvalidArgument) as zone:
        service.summarize_usage(
            pb.SummarizeUsageRequest(meters=meters, period=period, time_zone="Mars/Olympus")
        )
    assert zone.value.field == "time_zone"
    with pytest.raises(NotFound):
        service.summarize_usage(
            pb.SummarizeUsageRequest(meters=[common_pb2.MeterRef(meter_id="B")], period=period)
        )
