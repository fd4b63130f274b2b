"""An energy poll of one DL/T 645 line: each meter's forward block and reverse total, one
request after another on the line's callbacks
(:class:`~powerbus.adapters.meters.exchange.LinePoll`), decoded into readings when the
poll ends.

A whole line's poll awaits once, not once per exchange, and a reply that comes whole and
exactly as expected costs a few C calls until then (the base class says why that
matters). A failing meter gets its typed error and the poll goes on with the next one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from powerbus.adapters.dlt645.bcd import BcdError
from powerbus.adapters.dlt645.exchange import Exchange, Request
from powerbus.adapters.dlt645.frame import Frame
from powerbus.adapters.dlt645.identifiers import DI, ITEMS
from powerbus.adapters.meters.errors import FrameError, FrameProblem, MeterError
from powerbus.adapters.meters.exchange import LinePoll, Polled
from powerbus.adapters.meters.records import MeterReading, MeterSpec, Quantity, Reading

if TYPE_CHECKING:
    from powerbus.adapters.dlt645.client import Dlt645Client

__all__ = ["FORWARD_SIZE", "REVERSE", "EnergyPoll", "energy_readings", "energy_results", "garbled"]

Result = MeterReading | MeterError

REVERSE = ITEMS[DI.ENERGY_REVERSE]
FORWARD_SIZE = 20
"""The forward energy block's data: total and rates 1-4, 4 BCD bytes each."""


def garbled(meter: str, gateway: str, bad: Exception) -> FrameError:
    """The error of a reply whose data does not decode (bad BCD, too short)."""
    return FrameError(meter=meter, gateway=gateway, reason=FrameProblem.GARBAGE, problem=str(bad))


class EnergyPoll(LinePoll):
    """Energy reads of ``meters`` on ``client``'s line (held and connected by the
    caller); ``done`` gets what the line answered, for :func:`energy_results`: all of
    the meters, or fewer when the connection was lost or another request is waiting for
    the line."""

    __slots__ = ("_client",)

    def __init__(
        self,
        client: Dlt645Client,
        meters: Sequence[MeterSpec],
        done: Callable[[Polled], None],
    ) -> None:
        super().__init__(client.line, client.watchdog, [client.energy_job(m) for m in meters], done)
        self._client = client

    def _adopt(self, request: Any, meter: str, done: Callable[[Any], None]) -> Exchange:
        return self._client.adopt(meter, request, done)

    def _payload(self, reply: Any) -> bytes:
        assert isinstance(reply, Frame)
        return reply.data[4:]


def energy_requests(client: Dlt645Client, address: str) -> tuple[Request, Request]:
    """The two reads of an energy poll of the meter at ``address``."""
    return (
        client.read_request(address, DI.ENERGY_FORWARD_BLOCK, size=FORWARD_SIZE),
        client.read_request(address, DI.ENERGY_REVERSE, size=REVERSE.size),
    )


def energy_results(meters: Sequence[MeterSpec], polled: Polled) -> list[Result]:
    """The reading or error of each meter an :class:`EnergyPoll` of ``meters`` answered,
    in order (the first ``len(polled.answers)`` of them)."""
    results: list[Result] = []
    payloads = iter(polled.payloads)
    for meter, answer in zip(meters, polled.answers, strict=False):
        if isinstance(answer, MeterError):
            results.append(answer)
            continue
        forward, reverse = next(payloads), next(payloads)
        try:
            readings = energy_readings(forward[:FORWARD_SIZE], reverse[: REVERSE.size])
        except BcdError as bad:
            results.append(garbled(meter.meter_id, str(meter.gateway), bad))
            continue
        read_at = datetime.fromtimestamp(answer, timezone.utc)
        results.append(MeterReading(meter.meter_id, read_at, readings))
    return results


_FORWARD, _REVERSE = Quantity.ENERGY_FORWARD, Quantity.ENERGY_REVERSE
_new = tuple.__new__  # a Reading without its Python __new__: six a meter, 10,000 meters a poll


def energy_readings(forward: bytes, reverse: bytes) -> tuple[Reading, ...]:
    """A meter's energy readings from the data of its forward block (total and rates,
    tou 0..) and its reverse total: one ``hex`` and one digit check for all of them (the
    reversed bytes read as the values high digit first, reverse total first, then the
    block's last value to its first); :class:`BcdError` if they are not BCD."""
    if len(forward) % 4 or len(reverse) != REVERSE.size:
        raise BcdError(f"energy data of {len(forward)} + {len(reverse)} bytes")
    digits = (forward + reverse)[::-1].hex()
    if not digits.isdigit():
        raise BcdError(f"not BCD: {forward.hex()} {reverse.hex()}")
    last = len(digits)
    readings = [
        _new(Reading, (_FORWARD, int(digits[last - 8 * tou - 8 : last - 8 * tou]) / 100, 0, tou))
        for tou in range(len(forward) // 4)
    ]
    readings.append(_new(Reading, (_REVERSE, int(digits[:8]) / 100, 0, 0)))
    return tuple(readings)
