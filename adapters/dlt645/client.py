"""A DL/T 645-2007 line through a transparent serial gateway: requests, replies matched
to them, typed errors, and the meter's own history (daily freezes, load profile).

>>> client = Dlt645Client(HostPort("127.0.0.1", 6000))  # connects on first use
>>> # total = await client.read_value("D1", "000102030425", DI.ENERGY_FORWARD)
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import TypeVar

from powerbus.adapters.dlt645.bcd import BcdError, decode_bcd, decode_datetime, encode_datetime
from powerbus.adapters.dlt645.exchange import (
    ERROR_BITS,
    NO_DATA,
    Exchange,
    Outcome,
    Request,
)
from powerbus.adapters.dlt645.frame import BROADCAST, Control, Frame, FrameDecoder
from powerbus.adapters.dlt645.history import (
    DailyFreeze,
    ProfileRecord,
    decode_energy_block,
    decode_profile_records,
    encode_profile_request,
)
from powerbus.adapters.dlt645.identifiers import (
    DI,
    ITEMS,
    LoadProfile,
    daily_freeze,
    di_bytes,
)
from powerbus.adapters.dlt645.line_poll import (
    FORWARD_SIZE,
    REVERSE,
    EnergyPoll,
    energy_readings,
    energy_requests,
    energy_results,
    garbled,
)
from powerbus.adapters.meters.driver import ReadScope
from powerbus.adapters.meters.errors import DeviceRejected, GatewayUnreachable, MeterError
from powerbus.adapters.meters.exchange import Job, Polled, outcome_of, resolver
from powerbus.adapters.meters.line import LineConfig, TcpLine
from powerbus.adapters.meters.records import MeterReading, MeterSpec, Quantity, Reading
from powerbus.adapters.meters.watchdog import DeadlineTimer, Watchdog
from powerbus.bus.kernel.addresses import HostPort

T = TypeVar("T")

__all__ = ["ERROR_BITS", "NO_DATA", "Dlt645Client"]

# Relay control (control code 1CH): password level 02 and password 000000 (PA P0 P1 P2,
# the factory default of most meters; a deployment sets its own), operator code, then
# N1 = 1AH trip (拉闸) or 1CH direct close (直接合闸), N2 reserved, N3-N8 validity time.
RELAY_PASSWORD = bytes((0x02, 0x00, 0x00, 0x00))
RELAY_OPERATOR = bytes((0x00, 0x00, 0x00, 0x00))
RELAY_OPEN = 0x1A
RELAY_CLOSE = 0x1C


class Dlt645Client:
    """The :class:`~powerbus.adapters.meters.driver.MeterDriver` of one DL/T 645 line;
    ``timer`` keeps its requests' deadlines (shared by the lines of an
    :class:`~powerbus.adapters.meters.acquisition.Acquisition`, else its own)."""

    def __init__(
        self,
        gateway: HostPort,
        *,
        config: LineConfig | None = None,
        timer: DeadlineTimer | None = None,
    ) -> None:
        self.gateway = gateway
        self.line = TcpLine(gateway, config=config)
        self._decoder = FrameDecoder()
        timeout = self.line.config.request_timeout.total_seconds()
        self.watchdog = Watchdog(timeout, timer=timer)
        """The deadline of the request in flight on the line."""
        # A poll asks the same meters the same things every round: encoded once.
        self._requests: dict[tuple[str, int], Request] = {}
        self._jobs: dict[tuple[str, str], Job] = {}

    @property
    def discarded_bytes(self) -> int:
        """Garbage bytes skipped on this line so far (a health figure)."""
        return self._decoder.discarded

    async def request(self, meter: str, address: str, di: int, extra: bytes = b"") -> bytes:
        """Send a read (11H) of ``di`` and return the reply's data after the DI."""
        request = Frame(address, Control.READ, di_bytes(di) + extra)
        async with self.line.held():
            reply = await self._exchange(meter, request)
        return reply.data[4:]

    def read_request(self, address: str, di: int, *, size: int | None = None) -> Request:
        """A read (11H) of ``di`` from ``address``, encoded (kept for the next poll);
        ``size``: the reply's data after the DI, when the item has a fixed one."""
        request = self._requests.get((address, di))
        if request is None:
            if len(self._requests) >= _REQUESTS_KEPT:
                self._requests.clear()
            request = Request.of(Frame(address, Control.READ, di_bytes(di)), size=size)
            self._requests[address, di] = request
        return request

    def energy_job(self, meter: MeterSpec) -> Job:
        """What an energy poll asks ``meter`` (kept for the next poll)."""
        job = self._jobs.get((meter.meter_id, meter.address))
        if job is None:
            if len(self._jobs) >= _REQUESTS_KEPT:
                self._jobs.clear()
            job = Job(meter.meter_id, energy_requests(self, meter.address))
            self._jobs[meter.meter_id, meter.address] = job
        return job

    def adopt(self, meter: str, request: Request, done: Callable[[Outcome], None]) -> Exchange:
        """An exchange taking over ``request``, which a poll sent to ``meter``: the
        reply's resynchronising and matching, and why there is none (the line held)."""
        exchange = Exchange(self.line, self._decoder, self.watchdog, meter, request, done)
        exchange.adopt()
        return exchange

    async def read_value(self, meter: str, address: str, di: int) -> float:
        """One BCD item (energy, voltage, current, power...) as a float in our units."""
        item = ITEMS[di]
        data = await self.request(meter, address, di)
        return self._decode(meter, data[: item.size], item.decimals, item.signed)

    async def read_energy(
        self, meter: str, address: str, *, reverse: bool = False
    ) -> tuple[float, ...]:
        """(total, rate 1..4) forward or reverse active energy, kWh."""
        di = DI.ENERGY_REVERSE_BLOCK if reverse else DI.ENERGY_FORWARD_BLOCK
        data = await self.request(meter, address, di)
        return self._checked(meter, lambda: decode_energy_block(data[:20]))

    async def read_clock(self, meter: str, address: str) -> datetime:
        """The meter's date and time (naive, the meter's local time)."""
        date = await self.request(meter, address, DI.DATE)
        time = await self.request(meter, address, DI.TIME)
        return self._checked(meter, lambda: decode_datetime(time[:3] + date[1:4], fields="YMDhms"))

    async def read_daily_freeze(self, meter: str, address: str, day: int = 1) -> DailyFreeze:
        """The ``day``-th most recent daily freeze (1 = last midnight)."""
        when = await self.request(meter, address, daily_freeze(0, day))
        forward = await self.request(meter, address, daily_freeze(1, day))
        reverse = await self.request(meter, address, daily_freeze(2, day))
        return self._checked(
            meter,
            lambda: DailyFreeze(
                decode_datetime(when[:5]),
                decode_energy_block(forward[:20]),
                decode_energy_block(reverse[:20]),
            ),
        )

    async def read_load_profile(
        self, meter: str, address: str, *, start: datetime, count: int
    ) -> list[ProfileRecord]:
        """Up to ``count`` 15-minute records from ``start`` (meter local time), fetched
        ``LoadProfile.MAX_BLOCKS_PER_FRAME`` per frame; stops early where the meter has
        no more (a "no requested data" reply after the first frame)."""
        records: list[ProfileRecord] = []
        step = timedelta(minutes=LoadProfile.INTERVAL_MINUTES)
        while len(records) < count:
            blocks = min(LoadProfile.MAX_BLOCKS_PER_FRAME, count - len(records))
            at = start + step * len(records)
            try:
                data = await self.request(
                    meter, address, DI.LOAD_PROFILE_AT, encode_profile_request(at, blocks)
                )
            except DeviceRejected as rejected:
                if rejected.code & NO_DATA and records:
                    break
                raise
            got = self._checked(meter, functools.partial(decode_profile_records, data))
            if not got:
                break
            records += got
        return records

    async def relay(self, meter: str, address: str, *, close: bool, until: datetime) -> None:
        """Open (跳闸, 1AH) or close (直接合闸, 1CH) the meter's supply switch (control
        code 1CH) with the operator password ``RELAY_PASSWORD``, valid until ``until``
        (meter local time); raises :class:`DeviceRejected` when the meter refuses."""
        data = (
            RELAY_PASSWORD
            + RELAY_OPERATOR
            + bytes((RELAY_CLOSE if close else RELAY_OPEN, 0))
            + encode_datetime(until, "YMDhms")
        )
        async with self.line.held():
            await self._exchange(meter, Frame(address, Control.RELAY, data))

    async def relay_open(self, meter: str, address: str) -> bool:
        """Whether the meter's supply switch is open (status word 3, bit 4)."""
        data = await self.request(meter, address, DI.STATUS_3)
        return self._checked(meter, lambda: bool(int.from_bytes(data[:2], "little") & 0x10))

    async def broadcast_time(self, when: datetime, *, meter: str = "*") -> None:
        """Set every meter's clock on the line (08H to 999999999999; nobody replies)."""
        frame = Frame(BROADCAST, Control.BROADCAST_TIME, encode_datetime(when, "YMDhms"))
        async with self.line.held():
            await self.line.send(frame.encode(), meter=meter)

    async def read(self, meter: MeterSpec, *, scope: ReadScope = ReadScope.FULL) -> MeterReading:
        """Energy (total and rates, forward and reverse); with FULL also voltage, current,
        power, power factor and the meter's clock."""
        mid, addr = meter.meter_id, meter.address
        forward = await self.request(mid, addr, DI.ENERGY_FORWARD_BLOCK)
        reverse = await self.request(mid, addr, DI.ENERGY_REVERSE)
        energy = functools.partial(energy_readings, forward[:FORWARD_SIZE], reverse[: REVERSE.size])
        readings = list(self._checked(mid, energy))
        meter_time = None
        if scope is ReadScope.FULL:
            for quantity, di in (
                (Quantity.VOLTAGE, DI.VOLTAGE_A),
                (Quantity.CURRENT, DI.CURRENT_A),
                (Quantity.POWER, DI.POWER),
                (Quantity.POWER_FACTOR, DI.POWER_FACTOR),
            ):
                phase = 1 if quantity in (Quantity.VOLTAGE, Quantity.CURRENT) else 0
                readings.append(
                    Reading(quantity, await self.read_value(mid, addr, di), phase=phase)
                )
            meter_time = await self.read_clock(mid, addr)
        return MeterReading(mid, datetime.now(timezone.utc), tuple(readings), meter_time=meter_time)

    async def read_many(
        self, meters: Sequence[MeterSpec], *, scope: ReadScope = ReadScope.ENERGY
    ) -> list[MeterReading | MeterError]:
        """Read ``meters`` one after another; a failing meter does not stop the rest.
        Energy reads are chained in the line's callbacks (:class:`EnergyPoll`) and
        decoded when a poll ends."""
        results: list[MeterReading | MeterError] = []
        if scope is not ReadScope.ENERGY:
            for meter in meters:
                try:
                    results.append(await self.read(meter, scope=scope))
                except MeterError as error:
                    results.append(error)
            return results
        loop = asyncio.get_running_loop()
        while len(results) < len(meters):
            rest = meters[len(results) :]
            # The poll gives the line up when another request waits for it, and stops
            # where a connection was lost: this loop takes it again, reconnecting.
            async with self.line.held():
                try:
                    await self.line.connect(rest[0].meter_id)
                except GatewayUnreachable as error:
                    results.append(error)
                    continue
                polled: asyncio.Future[Polled] = loop.create_future()
                poll = EnergyPoll(self, rest, resolver(polled))
                poll.start()
                try:
                    results += energy_results(rest, await polled)
                finally:
                    poll.abandon()
        return results

    async def close(self) -> None:
        """Close the line's connection (idempotent)."""
        self.watchdog.close()
        await self.line.close()

    async def _exchange(self, meter: str, request: Frame) -> Frame:
        """Send ``request`` and wait for its answer; the line must be held."""
        await self.line.connect(meter)
        prepared = Request.of(request)

        def begin(done: Callable[[Outcome], None]) -> Exchange:
            exchange = Exchange(self.line, self._decoder, self.watchdog, meter, prepared, done)
            exchange.start()
            return exchange

        return await outcome_of(begin)

    def _decode(self, meter: str, raw: bytes, decimals: int, signed: bool) -> float:
        return self._checked(meter, lambda: decode_bcd(raw, decimals=decimals, signed=signed))

    def _checked(self, meter: str, decode: Callable[[], T]) -> T:
        try:
            return decode()
        except (BcdError, IndexError) as bad:
            raise garbled(meter, str(self.gateway), bad) from None


_REQUESTS_KEPT = 4096
"""Encoded requests a client keeps (a line's meters × the DIs a poll reads, with room)."""
