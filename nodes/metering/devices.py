"""The device half of ``powerbus.metering.v1.Metering``: ``ReadMeter`` (an on-demand
read, stored) and ``ExecuteEndDeviceControl`` (ping, clock sync, connect/disconnect),
both idempotent by ``header.message_id``.

An on-demand read talks to the meter's line whichever instance owns it for polling: a
serial gateway queues requests from more than one master, and the read is one exchange
among the poller's.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from google.protobuf.duration_pb2 import Duration

from powerbus.adapters.meters import (
    Acquisition,
    MeterError,
    MeterReading,
    MeterSpec,
    MeterTimeout,
    ReadScope,
)
from powerbus.bus.kernel.database import write_transaction
from powerbus.bus.kernel.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    Unavailable,
)
from powerbus.common.v1 import common_pb2
from powerbus.metering.v1 import metering_pb2 as pb
from powerbus.nodes.metering.convert import time_to_proto
from powerbus.nodes.metering.events import MeteringEvents
from powerbus.nodes.metering.journal import RequestKeys
from powerbus.nodes.metering.meters import MeterCatalog, spec_from_meter
from powerbus.nodes.metering.reads import reading_type, readings_to_proto, register_records
from powerbus.nodes.metering.store import ReadingStore

__all__ = ["Devices"]


def _duration(delta: timedelta) -> Duration:
    out = Duration()
    out.FromTimedelta(delta)
    return out


class Devices:
    """On-demand reads and controls; database work goes to a worker thread."""

    def __init__(
        self,
        *,
        store: ReadingStore,
        catalog: MeterCatalog,
        keys: RequestKeys,
        events: MeteringEvents,
        acquisition: Acquisition,
        source: str,
        time_zone: str,
        timeout: timedelta = timedelta(seconds=10),
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.keys = keys
        self.events = events
        self.acquisition = acquisition
        self.source = source
        self.zone = ZoneInfo(time_zone)
        self.timeout = timeout

    # -- ReadMeter ----------------------------------------------------------------------

    async def read_meter(
        self, request: pb.ReadMeterRequest, *, deadline: float | None = None
    ) -> pb.ReadMeterResponse:
        key = self.keys.key(request.header, method="ReadMeter")
        first = await asyncio.to_thread(self.keys.find, key, request, pb.ReadMeterResponse)
        if first is not None:
            first.duplicate = True
            return first
        if not request.meter.meter_id:
            raise InvalidArgument("meter.meter_id", "empty")
        meter = await asyncio.to_thread(self.catalog.get, request.meter.meter_id)
        if meter.state == pb.METER_STATE_REMOVED:
            raise FailedPrecondition(f"meter {meter.meter_id} is removed")
        spec = spec_from_meter(meter)
        read = await self._read(spec, deadline)
        offered = {reading_type(r).mrid for r in read.readings}
        for i, mrid in enumerate(request.reading_types):
            if mrid not in offered:
                raise InvalidArgument(
                    f"reading_types[{i}]",
                    f"{mrid} is not a reading meter {meter.meter_id} provides",
                )
        readings = readings_to_proto(
            meter, read, wanted=request.reading_types, source=spec.protocol.value
        )
        response = pb.ReadMeterResponse(
            header=common_pb2.MessageHeader(
                verb=common_pb2.VERB_REPLY,
                noun="MeterReadings",
                correlation_id=request.header.message_id,
            ),
            meter_reading=pb.MeterReading(
                meter=common_pb2.MeterRef(
                    meter_id=meter.meter_id, address=meter.address, channel=meter.channel
                ),
                values_interval=common_pb2.Period(
                    start=time_to_proto(read.read_at), end=time_to_proto(read.read_at)
                ),
                readings=readings,
            ),
            vee_result=pb.VeeResult(
                meter=common_pb2.MeterRef(meter_id=meter.meter_id),
                accepted=len(readings),
            ),
        )
        if read.meter_time is not None:
            offset = read.meter_time.replace(tzinfo=self.zone) - read.read_at
            response.clock_offset.CopyFrom(_duration(offset))
        await asyncio.to_thread(self._store_read, key, request, response, meter, read)
        return response

    async def _read(self, spec: MeterSpec, deadline: float | None) -> MeterReading:
        budget = self.timeout.total_seconds()
        if deadline is not None:
            budget = min(budget, max(deadline - 0.2, 0.05))
        try:
            return await asyncio.wait_for(self.acquisition.read(spec, scope=ReadScope.FULL), budget)
        except asyncio.TimeoutError:
            raise DeadlineExceeded(
                f"meter {spec.meter_id} via {spec.gateway}: no reading within {budget:.1f} s"
            ) from None
        except MeterTimeout as error:
            raise DeadlineExceeded(str(error)) from None
        except MeterError as error:
            if isinstance(error, Unavailable):
                raise
            raise Unavailable(str(error)) from None

    def _store_read(
        self,
        key: tuple[str, str],
        request: pb.ReadMeterRequest,
        response: pb.ReadMeterResponse,
        meter: pb.Meter,
        read: MeterReading,
    ) -> None:
        registers = register_records(meter, read, at=read.read_at)
        self.store.type_ids({r.reading_type for r in registers})
        with write_transaction(self.store.engine) as conn:
            self.store.write_registers_in(conn, registers)
            self.events.readings(
                conn,
                message_id=key[1],
                source=key[0] or self.source,
                meter_ids=[meter.meter_id],
                start=read.read_at,
                end=read.read_at,
                accepted=len(response.meter_reading.readings),
                rejected=0,
                estimated=0,
            )
            self.keys.remember(key, request, response, method="ReadMeter", conn=conn)
        self.catalog.mark_read([meter.meter_id], read.read_at)

    # -- controls -----------------------------------------------------------------------

    async def execute(
        self, request: pb.ExecuteEndDeviceControlRequest
    ) -> pb.ExecuteEndDeviceControlResponse:
        key = self.keys.key(request.header, method="ExecuteEndDeviceControl")
        control = request.control
        if not control.end_devices:
            raise InvalidArgument("control.end_devices", "no device given")
        if control.action == pb.CONTROL_ACTION_UNSPECIFIED:
            raise InvalidArgument("control.action", "no action given")
        first = await asyncio.to_thread(
            self.keys.find, key, request, pb.ExecuteEndDeviceControlResponse
        )
        if first is not None:
            first.duplicate = True
            return first
        ids = [d.meter_id for d in control.end_devices]
        if not all(ids):
            raise InvalidArgument("control.end_devices", "a device without meter_id")
        await asyncio.to_thread(self.catalog.require, ids)  # NOT_FOUND before acting
        meters = [await asyncio.to_thread(self.catalog.get, m) for m in ids]
        results = [await self._control(control.action, meter) for meter in meters]
        ok = sum(1 for r in results if r.outcome == pb.CONTROL_OUTCOME_SUCCEEDED)
        response = pb.ExecuteEndDeviceControlResponse(
            header=common_pb2.MessageHeader(
                verb=common_pb2.VERB_EXECUTED,
                noun="EndDeviceControls",
                correlation_id=request.header.message_id,
            ),
            result=common_pb2.REPLY_RESULT_OK
            if ok == len(results)
            else common_pb2.REPLY_RESULT_PARTIAL
            if ok
            else common_pb2.REPLY_RESULT_FAILED,
            control_mrid=control.mrid or str(uuid.uuid4()),
            results=results,
        )
        await asyncio.to_thread(
            self.keys.remember, key, request, response, method="ExecuteEndDeviceControl"
        )
        return response

    async def _switch(
        self, meter: pb.Meter, spec: MeterSpec, result: pb.EndDeviceControlResult, *, close: bool
    ) -> None:
        """远程费控: open or close a DL/T 645 meter's switch, then read its state back."""
        client = self.acquisition.dlt645(spec.gateway)
        timeout = self.timeout.total_seconds()
        until = datetime.now(self.zone).replace(tzinfo=None, microsecond=0) + timedelta(minutes=5)
        await asyncio.wait_for(
            client.relay(meter.meter_id, spec.address, close=close, until=until), timeout
        )
        opened = await asyncio.wait_for(client.relay_open(meter.meter_id, spec.address), timeout)
        state = pb.CONNECT_STATE_DISCONNECTED if opened else pb.CONNECT_STATE_CONNECTED
        result.connect_state = state
        await asyncio.to_thread(self.catalog.set_connect_state, meter.meter_id, state)
        if opened == close:
            result.outcome = pb.CONTROL_OUTCOME_FAILED
            result.detail = f"the switch reads {'open' if opened else 'closed'} afterwards"
        else:
            result.outcome = pb.CONTROL_OUTCOME_SUCCEEDED

    async def _control(
        self, action: pb.ControlAction.ValueType, meter: pb.Meter
    ) -> pb.EndDeviceControlResult:
        result = pb.EndDeviceControlResult(
            meter=common_pb2.MeterRef(meter_id=meter.meter_id),
            executed_at=time_to_proto(datetime.now(timezone.utc)),
        )
        spec = spec_from_meter(meter)
        try:
            if action == pb.CONTROL_ACTION_PING:
                began = time.monotonic()
                await asyncio.wait_for(
                    self.acquisition.read(spec, scope=ReadScope.ENERGY),
                    self.timeout.total_seconds(),
                )
                result.round_trip.CopyFrom(_duration(timedelta(seconds=time.monotonic() - began)))
                result.outcome = pb.CONTROL_OUTCOME_SUCCEEDED
            elif action == pb.CONTROL_ACTION_CLOCK_SYNC:
                if meter.kind != pb.METER_KIND_DLT645:
                    result.outcome = pb.CONTROL_OUTCOME_UNSUPPORTED
                    result.detail = f"{meter.model} keeps no clock"
                    return result
                client = self.acquisition.dlt645(spec.gateway)
                clock = await asyncio.wait_for(
                    client.read_clock(meter.meter_id, spec.address), self.timeout.total_seconds()
                )
                now = datetime.now(timezone.utc)
                result.clock_offset.CopyFrom(_duration(clock.replace(tzinfo=self.zone) - now))
                # DL/T 645 sets clocks by broadcast (08H) on the meter's line: nobody replies
                await client.broadcast_time(
                    datetime.now(self.zone).replace(tzinfo=None, microsecond=0),
                    meter=meter.meter_id,
                )
                result.outcome = pb.CONTROL_OUTCOME_SUCCEEDED
                result.detail = "time broadcast on the line"
            elif (
                action in (pb.CONTROL_ACTION_CONNECT, pb.CONTROL_ACTION_DISCONNECT)
                and meter.kind == pb.METER_KIND_DLT645
            ):
                await self._switch(meter, spec, result, close=action == pb.CONTROL_ACTION_CONNECT)
            else:
                # SDM meters and pulse channels have no supply switch, and the adapters
                # have no demand-reset command: say so rather than pretend.
                result.outcome = pb.CONTROL_OUTCOME_UNSUPPORTED
                result.detail = (
                    f"{pb.ControlAction.Name(action)}: not supported by {meter.model}"
                    f" on the {spec.protocol.value} adapter"
                )
        except (asyncio.TimeoutError, MeterTimeout) as error:
            result.outcome = pb.CONTROL_OUTCOME_NO_RESPONSE
            result.detail = str(error) or "no answer before the deadline"
        except MeterError as error:
            result.outcome = pb.CONTROL_OUTCOME_FAILED
            result.detail = str(error)
        return result
