"""The stored-data half of ``powerbus.metering.v1.Metering``: readings in and out, VEE
without storing, usage summaries, end-device events and the meter catalog. Every
method is synchronous (SQLAlchemy Core); the node runs them in a worker thread.

The device half (``ReadMeter``, ``ExecuteEndDeviceControl``) is in
:mod:`powerbus.nodes.metering.devices`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import Connection

from powerbus.bus.kernel.database import write_transaction
from powerbus.bus.kernel.errors import InvalidArgument, NotFound
from powerbus.common.v1 import common_pb2
from powerbus.metering.v1 import metering_pb2 as pb
from powerbus.nodes.metering.convert import (
    interval_reads_from_proto,
    interval_to_proto,
    kwh_to_wh,
    meter_readings_to_proto,
    meter_spec_from_proto,
    outcome_to_proto,
    quality_from_proto,
    records_from_outcome,
    summary_to_proto,
    time_from_proto,
    time_to_proto,
    wh_to_kwh,
    window_from_proto,
)
from powerbus.nodes.metering.events import MeteringEvents
from powerbus.nodes.metering.journal import DeviceEvents, RequestKeys
from powerbus.nodes.metering.meters import MeterCatalog
from powerbus.nodes.metering.reads import PULSE_COUNT
from powerbus.nodes.metering.store import (
    FORWARD_BULK_KWH,
    FORWARD_DELTA_KWH,
    IntervalRecord,
    ReadingStore,
    RegisterRecord,
    WriteResult,
)
from powerbus.nodes.metering.vee import (
    IntervalRead,
    RegisterRead,
    VeeConfig,
    VeeOutcome,
    run_vee,
)

__all__ = ["MeteringService"]

_MAX_PAGE = 10_000


@dataclass
class _Checked:
    """VEE's outcome of one submitted ``MeterReading``."""

    index: int
    outcome: VeeOutcome
    records: list[IntervalRecord]
    registers: list[RegisterRecord]


class MeteringService:
    """The stored-data RPCs over the node's database."""

    def __init__(
        self,
        *,
        store: ReadingStore,
        catalog: MeterCatalog,
        keys: RequestKeys,
        device_events: DeviceEvents,
        events: MeteringEvents,
        vee: VeeConfig,
        interval: timedelta,
        time_zone: str,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.keys = keys
        self.device_events = device_events
        self.events = events
        self.vee = vee
        self.interval = interval
        self.time_zone = time_zone

    # -- catalog ------------------------------------------------------------------------

    def put_meter(self, request: pb.PutMeterRequest) -> pb.Meter:
        meter = pb.Meter()
        meter.CopyFrom(request.meter)
        if not meter.HasField("interval"):
            meter.interval.FromTimedelta(self.interval)
        return self.catalog.put(meter)

    def get_meter(self, request: pb.GetMeterRequest) -> pb.Meter:
        if not request.meter_id:
            raise InvalidArgument("meter_id", "empty")
        return self.catalog.get(request.meter_id)

    def list_meters(self, request: pb.ListMetersRequest) -> pb.ListMetersResponse:
        meters, token = self.catalog.page(
            account_id=request.account_id,
            address=request.address,
            page_size=request.page.page_size,
            page_token=request.page.page_token,
        )
        return pb.ListMetersResponse(
            meters=meters, page=common_pb2.PageResponse(next_page_token=token, total_size=-1)
        )

    # -- readings out -------------------------------------------------------------------

    def get_meter_readings(
        self, request: pb.GetMeterReadingsRequest
    ) -> pb.GetMeterReadingsResponse:
        ids = [m.meter_id for m in request.meters]
        if not ids or not all(ids):
            raise InvalidArgument("meters", "at least one meter_id is needed")
        start, end = _period(request.period)
        self.catalog.require(ids)
        qualities = [
            quality_from_proto(q, field=f"qualities[{i}]") for i, q in enumerate(request.qualities)
        ]
        size = request.page.page_size or 1000
        if size < 0:
            raise InvalidArgument("page.page_size", f"must not be negative, got {size}")
        page = self.store.readings_page(
            ids,
            start,
            end,
            reading_types=list(request.reading_types),
            qualities=qualities,
            page_size=min(size, _MAX_PAGE),
            page_token=request.page.page_token,
        )
        out = {m.meter.meter_id: m for m in meter_readings_to_proto(page.items)}
        if not request.page.page_token:
            # register reads ride on the first page (few: one per read)
            wanted = [t for t in request.reading_types if not t.startswith("0.0.0.4.")]
            if not request.reading_types or wanted:
                for stored in self.store.registers(ids, start, end, reading_types=wanted):
                    reading = out.setdefault(
                        stored.record.meter_id,
                        pb.MeterReading(meter=common_pb2.MeterRef(meter_id=stored.record.meter_id)),
                    )
                    reading.readings.append(_register_to_proto(stored.record))
        return pb.GetMeterReadingsResponse(
            meter_readings=[out[k] for k in sorted(out)],
            page=common_pb2.PageResponse(next_page_token=page.next_page_token, total_size=-1),
        )

    def summarize_usage(self, request: pb.SummarizeUsageRequest) -> pb.SummarizeUsageResponse:
        ids = [m.meter_id for m in request.meters]
        if not ids or not all(ids):
            raise InvalidArgument("meters", "at least one meter_id is needed")
        start, end = _period(request.period)
        windows = [window_from_proto(w) for w in request.windows]
        zone = request.time_zone or self.time_zone
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidArgument("time_zone", f"unknown zone {zone!r}") from None
        summaries = []
        for meter_id in ids:
            meter = self.catalog.get(meter_id)
            spec = meter_spec_from_proto(meter)
            summary = self.store.summarize(
                meter_id,
                start,
                end,
                windows=windows,
                time_zone=zone,
                interval=spec.interval,
                rollover_wh=spec.rollover_wh,
            )
            summaries.append(summary_to_proto(summary))
        return pb.SummarizeUsageResponse(summaries=summaries)

    # -- readings in --------------------------------------------------------------------

    def validate(
        self, request: pb.ValidateMeterReadingsRequest
    ) -> pb.ValidateMeterReadingsResponse:
        if not request.meter_readings:
            raise InvalidArgument("meter_readings", "the batch is empty")
        self.catalog.require([m.meter.meter_id for m in request.meter_readings])
        checked, errors = self._check(request.meter_readings)
        return pb.ValidateMeterReadingsResponse(
            meter_readings=[_as_reading(c) for c in checked],
            vee_results=[outcome_to_proto(c.outcome, FORWARD_DELTA_KWH) for c in checked],
            errors=errors,
        )

    def submit(self, request: pb.SubmitMeterReadingsRequest) -> pb.SubmitMeterReadingsResponse:
        if not request.header.source:
            raise InvalidArgument("header.source", "needed as part of the idempotency key")
        key = self.keys.key(request.header, method="SubmitMeterReadings")
        if not request.meter_readings:
            raise InvalidArgument("meter_readings", "the batch is empty")
        first = self.keys.find(key, request, pb.SubmitMeterReadingsResponse)
        if first is not None:
            first.duplicate = True
            return first
        checked, errors = self._check(request.meter_readings, known_only=True)
        accepted = sum(c.outcome.accepted for c in checked)
        estimated = sum(c.outcome.estimated for c in checked)
        rejected = sum(c.outcome.rejected for c in checked) + len(errors)
        stored = accepted + estimated
        result = (
            common_pb2.REPLY_RESULT_FAILED
            if not stored
            else common_pb2.REPLY_RESULT_PARTIAL
            if rejected
            else common_pb2.REPLY_RESULT_OK
        )
        response = pb.SubmitMeterReadingsResponse(
            header=common_pb2.MessageHeader(
                verb=common_pb2.VERB_REPLY,
                noun="MeterReadings",
                correlation_id=request.header.message_id,
            ),
            result=result,
            accepted=accepted,
            rejected=rejected,
            estimated=estimated,
            errors=errors,
            vee_results=[outcome_to_proto(c.outcome, FORWARD_DELTA_KWH) for c in checked],
        )
        records = [r for c in checked for r in c.records]
        registers = [r for c in checked for r in c.registers]
        self.store.type_ids({r.reading_type for r in registers})
        ends = [r.value.end for r in records]

        def also(conn: Connection, _written: WriteResult) -> None:
            self.store.write_registers_in(conn, registers)
            if ends:
                self.events.readings(
                    conn,
                    message_id=key[1],
                    source=key[0],
                    meter_ids=[c.outcome.meter_id for c in checked],
                    start=min(ends) - self.interval,
                    end=max(ends),
                    accepted=accepted,
                    rejected=rejected,
                    estimated=estimated,
                )
            self.keys.remember(key, request, response, method="SubmitMeterReadings", conn=conn)

        self.store.write_intervals(records, also=also)
        return response

    def _check(
        self, items: Sequence[pb.MeterReading], *, known_only: bool = False
    ) -> tuple[list[_Checked], list[common_pb2.ItemError]]:
        checked: list[_Checked] = []
        errors: list[common_pb2.ItemError] = []
        for index, item in enumerate(items):
            try:
                checked.append(self._check_one(index, item))
            except NotFound as error:
                if not known_only:
                    raise
                errors.append(
                    common_pb2.ItemError(index=index, field="meter.meter_id", reason=str(error))
                )
            except InvalidArgument as error:
                errors.append(
                    common_pb2.ItemError(index=index, field=error.field, reason=str(error))
                )
        return checked, errors

    def _check_one(self, index: int, item: pb.MeterReading) -> _Checked:
        meter_id = item.meter.meter_id
        if not meter_id:
            raise InvalidArgument("meter.meter_id", "empty")
        meter = self.catalog.get(meter_id)
        spec = meter_spec_from_proto(meter)
        reads = []
        for b, block in enumerate(item.interval_blocks):
            if block.reading_type.mrid not in ("", FORWARD_DELTA_KWH):
                raise InvalidArgument(
                    f"interval_blocks[{b}].reading_type.mrid",
                    f"only forward active interval energy ({FORWARD_DELTA_KWH}) is taken",
                )
            reads += interval_reads_from_proto(block, field=f"interval_blocks[{b}]")
        registers = []
        register_reads = []
        for r, reading in enumerate(item.readings):
            if reading.reading_type.mrid != FORWARD_BULK_KWH:
                continue
            at = time_from_proto(reading.time_stamp)
            wh = kwh_to_wh(reading.value, field=f"readings[{r}].value")
            if wh < 0:
                raise InvalidArgument(f"readings[{r}].value", "a register is never negative")
            register_reads.append(RegisterRead(at, wh))
            registers.append(RegisterRecord(meter_id, FORWARD_BULK_KWH, at, wh))
        if not reads and len(register_reads) < 2:
            raise InvalidArgument(
                "interval_blocks", "no interval values, and fewer than two register reads"
            )
        start, end = self._span(item, reads, register_reads, spec.interval)
        history = self.store.history(
            meter_id, start, interval=spec.interval, time_zone=self.time_zone
        )
        outcome = run_vee(
            spec,
            start,
            end,
            intervals=reads,
            registers=register_reads,
            history=history,
            config=self.vee,
        )
        records = [
            r
            for r in records_from_outcome(outcome, FORWARD_DELTA_KWH)
            if r.value.wh is not None or r.value.raw_wh is not None
        ]
        return _Checked(index, outcome, records, registers)

    @staticmethod
    def _span(
        item: pb.MeterReading,
        reads: Sequence[IntervalRead],
        registers: Sequence[RegisterRead],
        interval: timedelta,
    ) -> tuple[datetime, datetime]:
        if item.HasField("values_interval"):
            return _period(item.values_interval, field="values_interval")
        ends = [r.end for r in reads]
        if ends:
            return min(ends) - interval, max(ends)
        times = [r.at for r in registers]
        return min(times), max(times)

    # -- end-device events --------------------------------------------------------------

    def list_events(self, request: pb.ListEndDeviceEventsRequest) -> pb.ListEndDeviceEventsResponse:
        start = end = None
        if request.HasField("period"):
            if request.period.HasField("start"):
                start = time_from_proto(request.period.start)
            if request.period.HasField("end"):
                end = time_from_proto(request.period.end)
            if start is not None and end is not None and end < start:
                raise InvalidArgument("period", "reversed")
        events, token = self.device_events.page(
            meter_ids=[m.meter_id for m in request.meters if m.meter_id],
            start=start,
            end=end,
            min_severity=int(request.min_severity),
            names=list(request.names),
            page_size=request.page.page_size,
            page_token=request.page.page_token,
        )
        return pb.ListEndDeviceEventsResponse(
            end_device_events=events,
            page=common_pb2.PageResponse(next_page_token=token, total_size=-1),
        )

    def submit_events(
        self, request: pb.SubmitEndDeviceEventsRequest
    ) -> pb.SubmitEndDeviceEventsResponse:
        key = self.keys.key(request.header, method="SubmitEndDeviceEvents")
        if not request.end_device_events:
            raise InvalidArgument("end_device_events", "the batch is empty")
        first = self.keys.find(key, request, pb.SubmitEndDeviceEventsResponse)
        if first is not None:
            first.duplicate = True
            return first
        good: list[pb.EndDeviceEvent] = []
        errors: list[common_pb2.ItemError] = []
        for index, event in enumerate(request.end_device_events):
            problem = _event_problem(event)
            if problem is not None:
                errors.append(
                    common_pb2.ItemError(index=index, field=problem[0], reason=problem[1])
                )
            else:
                good.append(event)
        response = pb.SubmitEndDeviceEventsResponse(
            header=common_pb2.MessageHeader(
                verb=common_pb2.VERB_REPLY,
                noun="EndDeviceEvents",
                correlation_id=request.header.message_id,
            ),
            result=common_pb2.REPLY_RESULT_FAILED
            if not good
            else common_pb2.REPLY_RESULT_PARTIAL
            if errors
            else common_pb2.REPLY_RESULT_OK,
            accepted=len(good),
            rejected=len(errors),
            errors=errors,
        )
        with write_transaction(self.store.engine) as conn:
            self.events.device_events(conn, good)
            self.keys.remember(key, request, response, method="SubmitEndDeviceEvents", conn=conn)
        return response


def _event_problem(event: pb.EndDeviceEvent) -> tuple[str, str] | None:
    if not event.mrid:
        return "mrid", "empty"
    if not event.meter.meter_id:
        return "meter.meter_id", "empty"
    if not event.HasField("created_date_time"):
        return "created_date_time", "missing"
    if not event.event_type.name and not event.event_type.mrid:
        return "event_type", "needs a name or an mrid"
    return None


def _period(period: common_pb2.Period, *, field: str = "period") -> tuple[datetime, datetime]:
    if not period.HasField("start") or not period.HasField("end"):
        raise InvalidArgument(field, "needs start and end")
    start, end = time_from_proto(period.start), time_from_proto(period.end)
    if end <= start:
        raise InvalidArgument(field, f"empty or reversed: {start.isoformat()} .. {end.isoformat()}")
    return start, end


def _register_to_proto(record: RegisterRecord) -> pb.Reading:
    pulses = record.reading_type == PULSE_COUNT
    return pb.Reading(
        reading_type=pb.ReadingType(
            mrid=record.reading_type,
            unit=pb.UNIT_PULSE if pulses else pb.UNIT_KWH,
            accumulation=pb.ACCUMULATION_BULK,
        ),
        value=float(record.value) if pulses else wh_to_kwh(record.value),
        time_stamp=time_to_proto(record.read_at),
        quality=pb.ReadingQuality(code=pb.QUALITY_CODE_VALID, cim_type="1.0.0"),
    )


def _as_reading(checked: _Checked) -> pb.MeterReading:
    block = pb.IntervalBlock(
        reading_type=pb.ReadingType(mrid=FORWARD_DELTA_KWH, unit=pb.UNIT_KWH),
        interval_readings=[
            interval_to_proto(v) for v in checked.outcome.intervals if v.wh is not None
        ],
    )
    return pb.MeterReading(
        meter=common_pb2.MeterRef(meter_id=checked.outcome.meter_id), interval_blocks=[block]
    )
