"""Estimation of missing and rejected intervals (E): linear interpolation between the good
values on both sides of a short gap, a flat load when only one side is good (the edges of
the period), the historical average of the same local interval for long gaps. Slots
locked by a meter reset are neither filled nor leaned on: the energy across a reset is
unknown, and estimating it would invent energy.
"""

from __future__ import annotations

from powerbus.nodes.metering.vee._config import VeeConfig
from powerbus.nodes.metering.vee._enums import EstimationMethod, QualityCode, VeeAction, VeeRule
from powerbus.nodes.metering.vee._grid import Slot, Work
from powerbus.nodes.metering.vee._history import History

__all__ = ["estimate_gaps"]


def estimate_gaps(work: Work, history: History | None, config: VeeConfig) -> None:
    """Fill every run of slots without a value, where a method applies."""
    slots = work.slots
    for first, length in work.runs(lambda s: s.wh is None and not s.locked):
        left = _anchor(slots, first - 1)
        right = _anchor(slots, first + length)
        run = slots[first : first + length]
        if length <= config.max_interpolation_intervals and (left is not None or right is not None):
            if left is not None and right is not None:
                _interpolate(run, left, right)
                method = EstimationMethod.LINEAR_INTERPOLATION
            else:
                _flat(run, left if left is not None else right)
                method = EstimationMethod.FLAT_LOAD
        elif history is not None and history.days >= config.history_min_days:
            if not _historical(run, history):
                _unfilled(work, first, length, "no history for some of its intervals")
                continue
            method = EstimationMethod.HISTORICAL_AVERAGE
        else:
            why = (
                "no good value beside it"
                if length <= config.max_interpolation_intervals
                else (
                    f"longer than {config.max_interpolation_intervals} intervals and "
                    f"under {config.history_min_days} days of history"
                )
            )
            _unfilled(work, first, length, why)
            continue
        detail = f"{length} interval(s) estimated by {method.value.replace('_', ' ')}"
        for slot in run:
            slot.quality, slot.method = QualityCode.ESTIMATED, method
            slot.rule = VeeRule.GAP if slot.rule is VeeRule.UNSPECIFIED else slot.rule
            slot.detail = f"{slot.detail}; {detail}" if slot.detail else detail
        work.find(
            VeeRule.GAP, VeeAction.ESTIMATED, first, count=length, detail=detail, method=method
        )


def _anchor(slots: list[Slot], index: int) -> int | None:
    if not 0 <= index < len(slots):
        return None
    slot = slots[index]
    return slot.wh if slot.good and not slot.locked else None


def _interpolate(run: list[Slot], left: int, right: int) -> None:
    # Exact integer line from the left value to the right one, rounded half up.
    span = len(run) + 1
    for k, slot in enumerate(run, start=1):
        slot.wh = (2 * (left * (span - k) + right * k) + span) // (2 * span)


def _flat(run: list[Slot], value: int | None) -> None:
    for slot in run:
        slot.wh = value


def _historical(run: list[Slot], history: History) -> bool:
    values = [history.expected(slot.end) for slot in run]
    if any(v is None for v in values):
        return False
    for slot, value in zip(run, values, strict=True):
        slot.wh = value
    return True


def _unfilled(work: Work, first: int, length: int, why: str) -> None:
    detail = f"{length} interval(s) not estimated: {why}"
    for slot in work.slots[first : first + length]:
        slot.rule = VeeRule.GAP if slot.rule is VeeRule.UNSPECIFIED else slot.rule
        slot.detail = f"{slot.detail}; {detail}" if slot.detail else detail
    work.find(VeeRule.GAP, VeeAction.FLAGGED, first, count=length, detail=detail)
