"""``powerbus node metering``: meter acquisition and meter data management.

It serves ``powerbus.metering.v1.Metering`` and, in the background, polls the lines it
owns (:mod:`.poller`), backfills after outages (:mod:`.backfill`) and publishes its
events through the SDK outbox (:mod:`.events`). Everything it keeps is in one database
(``--db``): readings, registers, line leases, meters, events, idempotency keys, outbox.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar

import grpc
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from powerbus.adapters.meters import Acquisition, LineConfig, load_meters
from powerbus.bus.kernel.database import create_engine
from powerbus.bus.kernel.errors import PowerbusError
from powerbus.metering.v1 import metering_pb2 as pb
from powerbus.metering.v1 import metering_pb2_grpc
from powerbus.nodes.metering.backfill import Backfill
from powerbus.nodes.metering.devices import Devices
from powerbus.nodes.metering.events import MeteringEvents
from powerbus.nodes.metering.journal import DeviceEvents, RequestKeys
from powerbus.nodes.metering.meters import MeterCatalog, meter_from_spec
from powerbus.nodes.metering.ownership import LineOwnership
from powerbus.nodes.metering.poller import Poller, PollerSettings
from powerbus.nodes.metering.service import MeteringService
from powerbus.nodes.metering.settings import MeteringSettings
from powerbus.nodes.metering.store import ReadingStore
from powerbus.nodes.metering.vee import VeeConfig
from powerbus.nodes.sdk.config import NodeConfig
from powerbus.nodes.sdk.events import Outbox, Publisher, open_event_tables
from powerbus.nodes.sdk.node import ConfiguredNode, bus_address_of

__all__ = ["MeteringNode"]

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]
T = TypeVar("T")


class MeteringNode(ConfiguredNode[MeteringSettings], metering_pb2_grpc.MeteringServicer):
    """``powerbus node metering``: serves ``powerbus.metering.v1.Metering``.

    >>> [s.name for s in MeteringNode.served_services()]
    ['powerbus.metering.v1.Metering']
    """

    kind = "metering"
    settings_type = MeteringSettings

    def __init__(self, *, settings: MeteringSettings, bus: str | None = None) -> None:
        self.settings = settings
        self._bus_address = bus
        self._engine: Engine | None = None
        self._service: MeteringService | None = None
        self._devices: Devices | None = None
        self._acquisition: Acquisition | None = None
        self._publisher: Publisher | None = None
        self.poller: Poller | None = None
        self._housekeeping: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: MeteringSettings, config: NodeConfig) -> MeteringNode:
        return cls(settings=settings, bus=bus_address_of(config))

    def metadata(self) -> Mapping[str, str]:
        return {
            "interval": f"{self.settings.interval.total_seconds():g}s",
            # a count: an instance may hold hundreds of lines, and a metadata value is
            # bounded (1 KiB); `powerbus meters list` shows which meter is on which line
            "lines": str(len(self.poller.owned)) if self.poller else "0",
        }

    async def on_start(self) -> None:
        settings = self.settings
        # pymodbus logs every timeout and stray byte at ERROR; the adapters turn them into
        # typed errors the poller counts and reports, so its own lines are noise here.
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        engine = self._engine = create_engine(settings.db)
        store = ReadingStore(engine)
        await asyncio.to_thread(store.migrate)
        await asyncio.to_thread(open_event_tables, engine)
        catalog = MeterCatalog(engine)
        if settings.meters is not None:
            specs = await asyncio.to_thread(load_meters, settings.meters)
            records = [meter_from_spec(s, interval=settings.interval) for s in specs]
            await asyncio.to_thread(catalog.put_many, records)
            log.info("metering: %d meters from %s", len(records), settings.meters)
        outbox = Outbox(engine, source=self.node_id)
        if settings.events_in and self._bus_address:
            self._publisher = Publisher(
                source=self.node_id,
                outbox=outbox,
                bus=self._bus_address,
                events_in=[a.strip() for a in settings.events_in.split(",") if a.strip()],
                channel=self.bus.channel,  # the node's own: its certificate and token
            )
            await self._publisher.start()
        else:
            log.warning("metering: no --events-in; events stay in the outbox unpublished")
        events = MeteringEvents(DeviceEvents(engine), outbox)
        keys = RequestKeys(engine)
        vee = VeeConfig(time_zone=settings.time_zone)
        acquisition = self._acquisition = Acquisition(
            config=LineConfig(request_timeout=settings.request_timeout)
        )
        await acquisition.start()
        self._service = MeteringService(
            store=store,
            catalog=catalog,
            keys=keys,
            device_events=DeviceEvents(engine),
            events=events,
            vee=vee,
            interval=settings.interval,
            time_zone=settings.time_zone,
        )
        self._devices = Devices(
            store=store,
            catalog=catalog,
            keys=keys,
            events=events,
            acquisition=acquisition,
            source=self.node_id,
            time_zone=settings.time_zone,
            timeout=settings.read_timeout,
        )
        self.poller = Poller(
            store=store,
            catalog=catalog,
            events=events,
            acquisition=acquisition,
            ownership=LineOwnership(engine, instance_id=self.node_id, ttl=settings.line_lease),
            backfill=Backfill(
                store=store,
                acquisition=acquisition,
                interval=settings.interval,
                time_zone=settings.time_zone,
            ),
            settings=PollerSettings(
                interval=settings.interval,
                lease_ttl=settings.line_lease,
                time_zone=settings.time_zone,
                source=self.node_id,
                freeze_readback_days=settings.freeze_readback_days,
            ),
            vee=vee,
        )
        await self.poller.start()
        self._housekeeping = asyncio.create_task(self._forget_old_keys(keys))

    async def on_stop(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            await asyncio.gather(self._housekeeping, return_exceptions=True)
            self._housekeeping = None
        if self.poller is not None:
            await self.poller.stop()
        if self._publisher is not None:
            await self._publisher.stop()
        if self._acquisition is not None:
            await self._acquisition.stop()
        if self._engine is not None:
            self._engine.dispose()
        self.poller = self._publisher = self._acquisition = self._engine = None

    async def _forget_old_keys(self, keys: RequestKeys) -> None:
        """Hourly: drop idempotency keys past their 48 h (the proto promises 24 h)."""
        while True:
            try:
                dropped = await asyncio.to_thread(keys.forget_older, datetime.now(timezone.utc))
                if dropped:
                    log.info("metering: forgot %d idempotency keys", dropped)
            except (PowerbusError, SQLAlchemyError) as error:
                log.warning("metering: forgetting old idempotency keys failed: %s", error)
            await asyncio.sleep(3600)

    # -- the service --------------------------------------------------------------------

    @property
    def service(self) -> MeteringService:
        if self._service is None:
            raise RuntimeError("metering node not started")
        return self._service

    @property
    def devices(self) -> Devices:
        if self._devices is None:
            raise RuntimeError("metering node not started")
        return self._devices

    async def _run(self, method: Callable[[Any], T], request: Any) -> T:
        return await asyncio.to_thread(method, request)

    async def GetMeterReadings(
        self, request: pb.GetMeterReadingsRequest, context: Context
    ) -> pb.GetMeterReadingsResponse:
        return await self._run(self.service.get_meter_readings, request)

    async def SubmitMeterReadings(
        self, request: pb.SubmitMeterReadingsRequest, context: Context
    ) -> pb.SubmitMeterReadingsResponse:
        return await self._run(self.service.submit, request)

    async def ValidateMeterReadings(
        self, request: pb.ValidateMeterReadingsRequest, context: Context
    ) -> pb.ValidateMeterReadingsResponse:
        return await self._run(self.service.validate, request)

    async def ReadMeter(
        self, request: pb.ReadMeterRequest, context: Context
    ) -> pb.ReadMeterResponse:
        remaining = context.time_remaining()
        return await self.devices.read_meter(request, deadline=remaining)

    async def SummarizeUsage(
        self, request: pb.SummarizeUsageRequest, context: Context
    ) -> pb.SummarizeUsageResponse:
        return await self._run(self.service.summarize_usage, request)

    async def ListEndDeviceEvents(
        self, request: pb.ListEndDeviceEventsRequest, context: Context
    ) -> pb.ListEndDeviceEventsResponse:
        return await self._run(self.service.list_events, request)

    async def SubmitEndDeviceEvents(
        self, request: pb.SubmitEndDeviceEventsRequest, context: Context
    ) -> pb.SubmitEndDeviceEventsResponse:
        return await self._run(self.service.submit_events, request)

    async def ExecuteEndDeviceControl(
        self, request: pb.ExecuteEndDeviceControlRequest, context: Context
    ) -> pb.ExecuteEndDeviceControlResponse:
        return await self.devices.execute(request)

    async def GetMeter(self, request: pb.GetMeterRequest, context: Context) -> pb.Meter:
        return await self._run(self.service.get_meter, request)

    async def ListMeters(
        self, request: pb.ListMetersRequest, context: Context
    ) -> pb.ListMetersResponse:
        return await self._run(self.service.list_meters, request)

    async def PutMeter(self, request: pb.PutMeterRequest, context: Context) -> pb.Meter:
        return await self._run(self.service.put_meter, request)
