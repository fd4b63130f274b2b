"""The meter farm: the planned meters behind their gateways on loopback, the control
endpoint, the meters file and the state file (``powerbus sim meters``).

State file::

    {"gateways": [{"address": "127.0.0.1:PORT", "protocol": "modbus", "meters": N}, ...],
     "meters_file": PATH, "control": "127.0.0.1:PORT", "baud": 9600, "speed": 1.0,
     "start": ISO, "meters": N}

>>> settings = FarmSettings(meters=20, gateways=2, state_file=Path("farm.json"))
>>> # async with MeterFarm(settings) as farm: ...   or   run_farm(settings)
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from powerbus.adapters.meters.meterfile import save_meters
from powerbus.adapters.meters.records import MeterSpec, Model, WireProtocol
from powerbus.adapters.meters.sim.clock import SimClock, to_epoch
from powerbus.adapters.meters.sim.control import ControlServer
from powerbus.adapters.meters.sim.dlt645_gateway import Dlt645Gateway
from powerbus.adapters.meters.sim.dlt645_meter import freeze_time, profile_record
from powerbus.adapters.meters.sim.faults import Fault, parse_faults
from powerbus.adapters.meters.sim.meter import SimMeter
from powerbus.adapters.meters.sim.modbus_gateway import ModbusGateway
from powerbus.adapters.meters.sim.modbus_meter import PulseTerminal, SdmDevice
from powerbus.adapters.meters.sim.population import FarmPlan, LineMix, MeterSlot, plan_farm
from powerbus.adapters.meters.sim.serial import SerialLine
from powerbus.adapters.meters.wire import DEFAULT_TURNAROUND
from powerbus.bus.kernel.addresses import HostPort, parse_host_port
from powerbus.bus.kernel.errors import InvalidArgument, NotFound
from powerbus.bus.kernel.lifecycle import Lifecycle, run_until_signalled
from powerbus.bus.kernel.statefile import write_state_file

__all__ = ["FarmSettings", "MeterFarm", "run_farm"]

log = logging.getLogger(__name__)

_HISTORY = timedelta(days=70)  # meters exist this long before the start: 62 freezes fit
_PULSE_MODULUS = float(1 << 32)


@dataclasses.dataclass(frozen=True, kw_only=True)
class FarmSettings:
    """``powerbus sim meters`` settings; ``meters_file`` defaults to beside the state file."""

    meters: int = 20
    gateways: int = 2
    lines: LineMix = LineMix.MIXED
    baud: int = 9600
    seed: int = 2026
    faults: str = ""
    state_file: Path | None = None
    meters_file: Path | None = None
    speed: float = 1.0
    start: datetime | None = None
    turnaround: float = DEFAULT_TURNAROUND
    host: str = "127.0.0.1"


Gateway = ModbusGateway | Dlt645Gateway


class MeterFarm(Lifecycle):
    """Every gateway of the plan, the control endpoint, and the files announcing them."""

    def __init__(self, settings: FarmSettings) -> None:
        self.settings = settings
        start = settings.start or datetime.now(timezone.utc).replace(microsecond=0)
        self.clock = SimClock(start=start, speed=settings.speed)
        self.plan: FarmPlan = plan_farm(
            meters=settings.meters,
            gateways=settings.gateways,
            seed=settings.seed,
            lines=settings.lines,
        )
        origin = self.clock.epoch() - _HISTORY.total_seconds()
        self.meters: dict[str, SimMeter] = {
            slot.meter_id: _sim_meter(slot, origin) for slot in self.plan.slots
        }
        self.gateways: list[Gateway] = [self._gateway(g) for g in range(settings.gateways)]
        self.addresses: list[HostPort] = []
        self.specs: list[MeterSpec] = []
        self.control_address: HostPort | None = None
        self._control = ControlServer(self._handle)
        now = self.clock.epoch()
        for meter in self.meters.values():
            # integrate each meter's history up to now once, before serving: done on the
            # first read instead, it would stall the whole farm for the first poll
            meter.registers(now)
        for fault in parse_faults(settings.faults):
            self._meter(fault.meter).inject(fault.fault, at=self.clock.epoch(), arg=fault.arg)

    async def start(self) -> None:
        """Listen, write the meters file, then the state file (readers wait for it)."""
        host = self.settings.host
        try:
            for gateway in self.gateways:
                self.addresses.append(HostPort(host, await gateway.start(host)))
            self.control_address = HostPort(host, await self._control.start(host))
        except BaseException:
            await self.stop()
            raise
        self.specs = [self._spec(slot) for slot in self.plan.slots]
        state_file = self.settings.state_file
        meters_file = self.settings.meters_file or (
            state_file.with_suffix(".meters.csv") if state_file else None
        )
        if meters_file is not None:
            save_meters(self.specs, meters_file)
        if state_file is not None:
            write_state_file(state_file, self.state(meters_file))
        log.info(
            "meter farm: %d meters behind %d gateways, control %s",
            len(self.meters),
            len(self.gateways),
            self.control_address,
        )

    async def stop(self) -> None:
        """Stop every server (idempotent)."""
        await self._control.stop()
        for gateway in self.gateways:
            await gateway.stop()

    def state(self, meters_file: Path | None) -> dict[str, object]:
        """What the state file says."""
        counts = [0] * len(self.gateways)
        for slot in self.plan.slots:
            counts[slot.gateway] += 1
        return {
            "gateways": [
                {"address": str(a), "protocol": p.value, "meters": n}
                for a, p, n in zip(self.addresses, self.plan.gateways, counts, strict=True)
            ],
            "meters_file": str(meters_file.resolve()) if meters_file else None,
            "control": str(self.control_address),
            "baud": self.settings.baud,
            "speed": self.settings.speed,
            "start": self.clock.start.isoformat(),
            "meters": len(self.meters),
        }

    # --- building -------------------------------------------------------------------------

    def _gateway(self, index: int) -> Gateway:
        line = SerialLine(baud=self.settings.baud, turnaround=self.settings.turnaround)
        slots = [s for s in self.plan.slots if s.gateway == index]
        seed = self.settings.seed * 1000 + index
        if self.plan.gateways[index] is WireProtocol.DLT645:
            meters = {s.address: self.meters[s.meter_id] for s in slots}
            return Dlt645Gateway(meters=meters, line=line, clock=self.clock, seed=seed)
        devices: dict[int, SdmDevice | PulseTerminal] = {}
        for slot in slots:
            meter = self.meters[slot.meter_id]
            if slot.model is Model.PULSE8:
                terminal = devices.setdefault(slot.unit, PulseTerminal(slot.unit))
                assert isinstance(terminal, PulseTerminal)
                channel = int(slot.address.partition("/")[2]) - 1
                terminal.channels[channel] = meter
                terminal.constants[channel] = slot.pulse_constant or 1000
            else:
                devices[slot.unit] = SdmDevice(slot.unit, meter, slot.model is Model.SDM630)
        return ModbusGateway(devices=list(devices.values()), line=line, clock=self.clock, seed=seed)

    def _spec(self, slot: MeterSlot) -> MeterSpec:
        return MeterSpec(
            meter_id=slot.meter_id,
            protocol=slot.protocol,
            gateway=self.addresses[slot.gateway],
            address=slot.address,
            model=slot.model,
            pulse_constant=slot.pulse_constant,
        )

    # --- control --------------------------------------------------------------------------

    def _meter(self, meter_id: object) -> SimMeter:
        meter = self.meters.get(str(meter_id))
        if meter is None:
            raise NotFound(f"no meter {meter_id!r}")
        return meter

    def _line(self, gateway: object) -> SerialLine:
        address = parse_host_port(str(gateway), field="gateway")
        for held, gw in zip(self.addresses, self.gateways, strict=True):
            if held == address:
                return gw.line
        raise NotFound(f"no gateway {gateway!r}")

    async def _handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        now = self.clock.epoch()
        if op == "now":
            return {"now": self.clock.now().isoformat()}
        if op == "fault":
            arg = request.get("arg")
            self._meter(request.get("meter")).inject(
                Fault(request.get("fault")), at=now, arg=None if arg is None else float(arg)
            )
            return {}
        if op == "clear":
            self._meter(request.get("meter")).clear(at=now)
            return {}
        if op == "cut":
            seconds = request.get("seconds")
            real = None if seconds is None else self.clock.real_seconds(float(seconds))
            self._line(request.get("gateway")).cut(real)
            return {}
        if op == "restore":
            self._line(request.get("gateway")).restore()
            return {}
        if op == "registers":
            at = _time(request.get("at"), now)
            forward, reverse = self._meter(request.get("meter")).registers(at)
            return {"forward": list(forward), "reverse": list(reverse)}
        if op == "profile":
            return {"records": self._profile(request, now)}
        if op == "freeze":
            at = freeze_time(now, int(request.get("day", 1)))
            forward, reverse = self._meter(request.get("meter")).registers(at)
            return {"at": _iso(at), "forward": list(forward), "reverse": list(reverse)}
        if op == "stats":
            pairs = zip(self.addresses, self.gateways, strict=True)
            return {"lines": [self._stats(a, g) for a, g in pairs]}
        raise InvalidArgument("op", f"unknown operation {op!r}")

    def _profile(self, request: dict[str, Any], now: float) -> list[list[object]]:
        meter = self._meter(request.get("meter"))
        start = _time(request.get("start"), now)
        step = 900.0
        first = -(-start // step) * step
        records = []
        for i in range(int(request.get("count", 1))):
            at = first + i * step
            if at > now:
                break
            record = profile_record(meter, at)
            records.append([record.stored_at.isoformat(), record.forward, record.reverse])
        return records

    def _stats(self, address: HostPort, gateway: Gateway) -> dict[str, object]:
        stats = gateway.line.stats
        return {
            "gateway": str(address),
            "exchanges": stats.exchanges,
            "busy_seconds": stats.busy,
            "silent": stats.silent,
            "cut": gateway.line.is_cut,
        }


def _sim_meter(slot: MeterSlot, origin: float) -> SimMeter:
    modulus = 1_000_000.0
    if slot.model is Model.PULSE8 and slot.pulse_constant:
        modulus = _PULSE_MODULUS / slot.pulse_constant
    return SimMeter(
        meter_id=slot.meter_id,
        customer=slot.customer,
        mean_kw=slot.mean_kw,
        initial_kwh=slot.initial_kwh,
        seed=slot.seed,
        origin=origin,
        modulus=modulus,
    )


def _time(value: object, default: float) -> float:
    if value is None:
        return default
    return to_epoch(datetime.fromisoformat(str(value)))


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat()


def run_farm(settings: FarmSettings) -> int:
    """Run the farm until SIGTERM/SIGINT; returns the exit status (0 after a clean stop)."""
    logging.getLogger("pymodbus").setLevel(logging.WARNING)
    return run_until_signalled(lambda: MeterFarm(settings))
