"""Round robin and the picker contract, as pure logic."""

from __future__ import annotations

import collections

from powerbus.load_balancer import Endpoint, Picker, PickRequest, RoundRobinPicker

ENDPOINTS = [Endpoint(f"n{i}", f"127.0.0.1:{7000 + i}") for i in range(3)]


def test_round_robin_is_a_picker():
    assert isinstance(RoundRobinPicker(), Picker)


def test_each_endpoint_in_turn_evenly():
    picker = RoundRobinPicker()
    picker.update(ENDPOINTS)
    counts = collections.Counter(picker.pick(PickRequest()).node_id for _ in range(300))
    assert counts == {"n0": 100, "n1": 100, "n2": 100}


def test_order_does_not_depend_on_update_order():
    a, b = RoundRobinPicker(), RoundRobinPicker()
    a.update(ENDPOINTS)
    b.update(list(reversed(ENDPOINTS)))
    assert [a.pick(PickRequest()).node_id for _ in range(6)] == [
        b.pick(PickRequest()).node_id for _ in range(6)
    ]


def test_nothing_to_pick_is_none():
    picker = RoundRobinPicker()
    assert picker.pick(PickRequest()) is None
    picker.update(ENDPOINTS)
    picker.update([])
    assert picker.pick(PickRequest()) is None


def test_excluded_nodes_are_skipped_while_others_exist():
    picker = RoundRobinPicker()
    picker.update(ENDPOINTS)
    request = PickRequest(exclude=frozenset({"n1"}))
    assert {picker.pick(request).node_id for _ in range(10)} == {"n0", "n2"}


def test_excluding_everyone_still_picks():
    # A retry with nowhere else to go may reuse a node rather than fail outright.
    picker = RoundRobinPicker()
    picker.update(ENDPOINTS[:1])
    assert picker.pick(PickRequest(exclude=frozenset({"n0"}))).node_id == "n0"


def test_updates_keep_serving_the_remaining_endpoints():
    picker = RoundRobinPicker()
    picker.update(ENDPOINTS)
    picker.pick(PickRequest())
    picker.update(ENDPOINTS[1:])
    assert {picker.pick(PickRequest()).node_id for _ in range(4)} == {"n1", "n2"}
