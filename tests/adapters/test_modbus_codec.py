"""Modbus register maps, request planning, word codecs and pulse counters."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from powerbus.adapters.meters import Quantity
from powerbus.adapters.modbus import (
    PULSE8,
    SDM120,
    SDM630,
    Register,
    counter_delta,
    decode_float32,
    decode_uint32,
    encode_float32,
    encode_uint32,
    plan,
    pulses_to_kwh,
    registers_bytes,
)
from powerbus.adapters.modbus.readings import decode_block, terminal


def test_float_words_match_the_verified_vectors() -> None:
    assert encode_float32([230.1]) == [17254, 6554]
    hz, imp, exp = decode_float32([16968, 2621, 17984, 58982, 16624, 0])
    assert (round(hz, 2), round(imp, 1), exp) == (50.01, 12345.6, 7.5)


def test_register_addresses_follow_the_manual() -> None:
    by_quantity = {(r.quantity, r.phase): r.address for r in SDM630.registers}
    assert by_quantity[(Quantity.ENERGY_FORWARD, 0)] == 0x48  # 30073
    assert by_quantity[(Quantity.ENERGY_REVERSE, 0)] == 0x4A
    assert by_quantity[(Quantity.VOLTAGE, 3)] == 0x04
    assert by_quantity[(Quantity.FREQUENCY, 0)] == 0x46
    assert {r.address for r in SDM120.registers} >= {0x00, 0x06, 0x0C, 0x1E, 0x46, 0x48, 0x4A}


def test_sdm_plans_merge_touching_ranges() -> None:
    assert [(b.address, b.count) for b in plan(SDM120.registers)] == [
        (0, 2), (6, 2), (12, 2), (30, 2), (70, 6),
    ]  # fmt: skip
    assert [(b.address, b.count) for b in plan(PULSE8.registers)] == [(0, 17)]


@given(st.sets(st.integers(0, 400), min_size=1, max_size=120))
def test_plans_cover_every_register_within_the_limit(starts: set[int]) -> None:
    registers = tuple(Register(2 * s, Quantity.VOLTAGE) for s in starts)
    blocks = plan(registers)
    assert all(b.count <= 60 for b in blocks)
    covered = [r.address for b in blocks for r in b.registers]
    assert sorted(covered) == sorted(r.address for r in registers)
    for a, b in itertools.pairwise(blocks):  # only forced splits remain
        touching = a.address + a.count == b.address
        assert not touching or a.count + b.registers[0].words > 60


def test_decode_block_scales_power_to_kw() -> None:
    (block,) = plan(tuple(r for r in SDM120.registers if r.address == 0x0C))
    (reading,) = decode_block(block, registers_bytes(encode_float32([2300.0])))
    assert reading.quantity is Quantity.POWER and reading.value == pytest.approx(2.3)


def test_a_terminal_block_gives_eight_counters_and_the_wire_break_mask() -> None:
    counters = [0, 1, 70_000, 2**32 - 1, 5, 6, 7, 8]
    raw = registers_bytes([*encode_uint32(counters), 0b1000_0010])
    assert terminal(raw) == (tuple(counters), 0b1000_0010)


@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=8))
def test_uint32_round_trip(values: list[int]) -> None:
    assert list(decode_uint32(encode_uint32(values))) == values


@given(previous=st.integers(0, 2**32 - 1), pulses=st.integers(0, 2**31))
def test_counter_delta_handles_the_wrap(previous: int, pulses: int) -> None:
    assert counter_delta(previous, (previous + pulses) % 2**32) == pulses


def test_pulses_to_kwh() -> None:
    assert pulses_to_kwh(3200, 3200) == 1.0
    assert pulses_to_kwh(1600, 6400) == 0.25
    with pytest.raises(ValueError):
        pulses_to_kwh(1, 0)
