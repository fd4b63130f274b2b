"""An energy poll of one DL/T 645 line: each meter's forward block and reverse total, one
exchange after another, the next started from the callback that ended the one before.

A whole line's poll therefore awaits once, not once per exchange
(:mod:`powerbus.adapters.dlt645.exchange` says why that matters). A failing meter gets its
typed error and the poll goes on with the next one; the poll ends early, with what it has,
when the connection is lost (the caller reconnects for the rest) or when another request
waits for the line (an on-demand read is not kept behind a whole line's poll).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, TypeVar

from powerbus.adapters.dlt645.bcd import BcdError, decode_bcd
from powerbus.adapters.dlt645.exchange import Outcome
from powerbus.adapters.dlt645.history import decode_energy_block
from powerbus.adapters.dlt645.identifiers import DI, ITEMS
from powerbus.adapters.meters.errors import FrameError, FrameProblem, MeterError
from powerbus.adapters.meters.exchange import LinePoll
from powerbus.adapters.meters.records import MeterReading, MeterSpec, Quantity, Reading

if TYPE_CHECKING:
    from powerbus.adapters.dlt645.client import Dlt645Client

__all__ = ["EnergyPoll", "energy_readings", "garbled"]

Result = MeterReading | MeterError

_REVERSE = ITEMS[DI.ENERGY_REVERSE]
T = TypeVar("T")


def _decode_reverse(data: bytes) -> float:
    raw = data[4 : 4 + _REVERSE.size]
    return decode_bcd(raw, decimals=_REVERSE.decimals, signed=_REVERSE.signed)


def _decode_forward(data: bytes) -> tuple[float, ...]:
    return decode_energy_block(data[4:24])


def energy_readings(forward: Sequence[float], reverse: float) -> list[Reading]:
    """A meter's energy readings: forward total and rates 1..4 (tou 0..4), reverse total."""
    readings = [Reading(Quantity.ENERGY_FORWARD, v, 0, i) for i, v in enumerate(forward)]
    readings.append(Reading(Quantity.ENERGY_REVERSE, reverse))
    return readings


def garbled(meter: str, gateway: str, bad: Exception) -> FrameError:
    """The error of a reply whose data does not decode (bad BCD, too short)."""
    return FrameError(meter=meter, gateway=gateway, reason=FrameProblem.GARBAGE, problem=str(bad))


class EnergyPoll(LinePoll):
    """Energy reads of ``meters`` on ``client``'s line (held and connected by the caller).

    ``done`` gets the results so far, in the order of ``meters``: all of them, or fewer
    when the connection was lost or another request is waiting for the line.
    """

    __slots__ = ("_client", "_done", "_forward", "_meters", "_results")

    def __init__(
        self,
        client: Dlt645Client,
        meters: Sequence[MeterSpec],
        done: Callable[[list[Result]], None],
    ) -> None:
        super().__init__(client.line)
        self._client = client
        self._meters = meters
        self._done = done
        self._results: list[Result] = []
        self._forward: tuple[float, ...] = ()

    def _next(self) -> None:
        results = self._results
        if self._ended:
            return
        if self._ends(finished=len(results) == len(self._meters), progressed=bool(results)):
            self._done(results)
            return
        meter = self._meters[len(results)]
        self._exchange = self._client.begin(
            meter.meter_id, meter.address, DI.ENERGY_FORWARD_BLOCK, self._forward_read
        )

    def _forward_read(self, outcome: Outcome) -> None:
        forward = self._decoded(outcome, _decode_forward)
        if forward is not None:
            self._forward = forward
            meter = self._meters[len(self._results)]
            self._exchange = self._client.begin(
                meter.meter_id, meter.address, DI.ENERGY_REVERSE, self._reverse_read
            )

    def _reverse_read(self, outcome: Outcome) -> None:
        reverse = self._decoded(outcome, _decode_reverse)
        if reverse is not None:
            meter_id = self._meters[len(self._results)].meter_id
            readings = tuple(energy_readings(self._forward, reverse))
            self._meter_done(MeterReading(meter_id, datetime.now(timezone.utc), readings))

    def _decoded(self, outcome: Outcome, decode: Callable[[bytes], T]) -> T | None:
        """``decode`` of the reply's data; None when the meter is done (its error kept)."""
        if isinstance(outcome, MeterError):
            self._meter_done(outcome)
            return None
        try:
            return decode(outcome.data)
        except (BcdError, IndexError) as bad:
            meter = self._meters[len(self._results)]
            self._meter_done(garbled(meter.meter_id, str(meter.gateway), bad))
            return None

    def _meter_done(self, result: Result) -> None:
        self._exchange = None
        self._results.append(result)
        self._next()
