"""What one poll of one line stores, built meter by meter before one write.

For a meter that answered: its register reads, the intervals VEE derives from the
register step since its previous read (a step over several intervals, after a silent
spell or a takeover, spreads the measured energy and flags it estimated), and the events
of its coming back or of its pulse wire breaking. For one that did not: a ``no_response``
event when its silence starts, and a flat estimate of the interval from its last value.
The poller writes the whole batch in one transaction under the line's fencing token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from powerbus.adapters.meters import MeterError, MeterReading
from powerbus.metering.v1 import metering_pb2 as pb
from powerbus.nodes.metering.convert import meter_spec_from_proto
from powerbus.nodes.metering.events import device_event
from powerbus.nodes.metering.meters import Polled
from powerbus.nodes.metering.reads import register_records, vee_register, vee_register_type
from powerbus.nodes.metering.store import (
    FORWARD_DELTA_KWH,
    IntervalRecord,
    ReadingStore,
    RegisterRecord,
)
from powerbus.nodes.metering.vee import (
    IntervalRead,
    IntervalValue,
    RegisterRead,
    VeeConfig,
    run_vee,
)

__all__ = ["LineBatch", "MeterState", "load_states"]


@dataclass
class MeterState:
    """What the poller remembers of a meter between polls (rebuilt from the database
    when missing)."""

    register_at: datetime | None = None
    register: int | None = None
    last_wh: int | None = None
    silent_since: datetime | None = None
    wire_break: bool = False

    def copy(self) -> MeterState:
        """A copy to update (by hand: ``copy.copy`` and ``dataclasses.replace`` cost
        several times more, per meter per poll)."""
        return MeterState(
            self.register_at, self.register, self.last_wh, self.silent_since, self.wire_break
        )


def load_states(
    store: ReadingStore, meters: Sequence[Polled], end: datetime, interval: timedelta
) -> dict[str, MeterState]:
    """Each meter's last register read and interval value, from the database: two
    queries for the whole line (a start or a takeover reads every meter of it)."""
    if not meters:
        return {}
    lookback = max(interval * 96 * 2, timedelta(days=2))
    ids = [m.meter.meter_id for m in meters]
    wanted = {m.meter.meter_id: vee_register_type(m.meter) for m in meters}
    last_register: dict[str, RegisterRecord] = {}
    for stored in store.registers(
        ids,
        end - lookback,
        end - timedelta(microseconds=1),
        reading_types=sorted(set(wanted.values())),
    ):
        record = stored.record
        if record.reading_type == wanted[record.meter_id]:
            last_register[record.meter_id] = record  # ordered by time: the last wins
    last_value: dict[str, IntervalValue] = {}
    for stored_value in store.readings(ids, end - lookback, end, reading_types=[FORWARD_DELTA_KWH]):
        if stored_value.value.wh is not None:
            last_value[stored_value.meter_id] = stored_value.value
    states = {}
    for meter_id in ids:
        state = states[meter_id] = MeterState()
        register = last_register.get(meter_id)
        if register is not None:
            state.register_at, state.register = register.read_at, register.value
        value = last_value.get(meter_id)
        if value is not None:
            state.last_wh = value.wh
            if register is not None and value.end > snap(register.read_at, interval):
                # estimates after the last read: the meter has been silent since
                state.silent_since = snap(register.read_at, interval) + interval
    return states


def snap(at: datetime, interval: timedelta) -> datetime:
    """The interval end nearest to ``at``."""
    seconds = interval.total_seconds()
    return datetime.fromtimestamp(round(at.timestamp() / seconds) * seconds, timezone.utc)


@dataclass
class LineBatch:
    """Records, events and new meter states of one line's poll (see the module docstring)."""

    interval: timedelta
    vee: VeeConfig
    registers: list[RegisterRecord] = field(default_factory=list)
    records: list[IntervalRecord] = field(default_factory=list)
    events: list[pb.EndDeviceEvent] = field(default_factory=list)
    updates: dict[str, MeterState] = field(default_factory=dict)
    came_back: list[tuple[Polled, datetime]] = field(default_factory=list)
    """Meters that answered again after a silence, with the first interval end missed."""
    answered: list[str] = field(default_factory=list)
    accepted: int = 0
    estimated: int = 0
    rejected: int = 0

    def add(
        self, meter: Polled, old: MeterState, got: MeterReading | MeterError | None, end: datetime
    ) -> None:
        """Add one meter's outcome of the poll ending at ``end``."""
        state = old.copy()
        if isinstance(got, MeterReading):
            self._answered(meter, state, got, end)
        else:
            self._silent(meter, state, got, end)
        self.updates[meter.meter.meter_id] = state

    def _answered(self, meter: Polled, state: MeterState, got: MeterReading, end: datetime) -> None:
        meter_id = meter.meter.meter_id
        self.answered.append(meter_id)
        value = vee_register(meter.meter, got)
        self.registers += register_records(meter.meter, got, at=got.read_at)
        # A read belongs to the interval end nearest to it (a slow line's last meters may
        # be read after the next boundary).
        point = snap(got.read_at, self.interval)
        if value is not None and state.register_at is not None and state.register is not None:
            start = snap(state.register_at, self.interval)
            if start < point:
                outcome = run_vee(
                    meter_spec_from_proto(meter.meter),
                    start,
                    point,
                    registers=[RegisterRead(start, state.register), RegisterRead(point, value)],
                    config=self.vee,
                )
                self.records += [
                    IntervalRecord(meter_id, FORWARD_DELTA_KWH, v) for v in outcome.intervals
                ]
                self.accepted += outcome.accepted
                self.estimated += outcome.estimated
                self.rejected += outcome.rejected
                last = [v.wh for v in outcome.intervals if v.wh is not None]
                state.last_wh = last[-1] if last else state.last_wh
        if value is not None:
            state.register_at, state.register = got.read_at, value
        if state.silent_since is not None:
            self.came_back.append((meter, state.silent_since))
            self.events.append(
                device_event(
                    meter_id,
                    "communication_restored",
                    end,
                    reason=f"answers again, silent since {state.silent_since:%H:%M:%S}",
                    severity=pb.EVENT_SEVERITY_INFO,
                )
            )
            state.silent_since = None
        broken = "wire_break" in got.alarms
        if broken and not state.wire_break:
            self.events.append(
                device_event(
                    meter_id,
                    "pulse_wire_break",
                    end,
                    reason="pulse input wire broken",
                    severity=pb.EVENT_SEVERITY_CRITICAL,
                )
            )
        state.wire_break = broken

    def _silent(
        self, meter: Polled, state: MeterState, got: MeterError | None, end: datetime
    ) -> None:
        meter_id = meter.meter.meter_id
        if state.silent_since is None:
            state.silent_since = end
            self.events.append(
                device_event(
                    meter_id,
                    "no_response",
                    end,
                    reason=str(got) if got is not None else "not read",
                    severity=pb.EVENT_SEVERITY_WARNING,
                    details={"gateway": meter.gateway},
                )
            )
        if state.last_wh is None:
            return
        outcome = run_vee(
            meter_spec_from_proto(meter.meter),
            end - 2 * self.interval,
            end,
            intervals=[IntervalRead(end - self.interval, state.last_wh)],
            config=self.vee,
        )
        fill = outcome.intervals[-1]
        if fill.wh is not None:
            self.records.append(IntervalRecord(meter_id, FORWARD_DELTA_KWH, fill))
            self.estimated += 1
