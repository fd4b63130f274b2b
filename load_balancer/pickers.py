"""The table of picker algorithms, by :class:`~powerbus.load_balancer.settings.PickerKind`."""

from __future__ import annotations

import random
from collections.abc import Callable

from powerbus.load_balancer.least_request import LeastRequestPicker
from powerbus.load_balancer.peak_ewma import PeakEwmaPicker
from powerbus.load_balancer.picker import Picker
from powerbus.load_balancer.ring_hash import RingHashPicker
from powerbus.load_balancer.settings import BalancerSettings, PickerKind
from powerbus.load_balancer.weighted import SmoothRoundRobinPicker, WeightedRandomPicker

__all__ = ["make_picker"]


def make_picker(
    settings: BalancerSettings, *, rng: random.Random, clock: Callable[[], float]
) -> Picker:
    """A new picker of ``settings.picker``'s kind.

    >>> type(make_picker(BalancerSettings(), rng=random.Random(), clock=float)).__name__
    'SmoothRoundRobinPicker'
    """
    kind = settings.picker
    if kind is PickerKind.ROUND_ROBIN:
        return SmoothRoundRobinPicker()
    if kind is PickerKind.RANDOM:
        return WeightedRandomPicker(rng=rng)
    if kind is PickerKind.LEAST_REQUEST:
        return LeastRequestPicker(rng=rng)
    if kind is PickerKind.PEAK_EWMA:
        return PeakEwmaPicker(settings.peak_ewma, rng=rng, clock=clock)
    if kind is PickerKind.RING_HASH:
        return RingHashPicker(settings.ring_hash, rng=rng)
    raise ValueError(f"unknown picker kind {kind!r}")  # pragma: no cover
