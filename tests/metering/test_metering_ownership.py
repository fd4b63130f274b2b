"""Line ownership on SQLite files and PostgreSQL, with real engines (each like another
process's) and real threads: one owner per gateway at a time, tokens that only grow,
expiry handing a line over, a stale owner's writes refused in the insert's transaction.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import pytest
from metering_helpers import end

from powerbus.nodes.metering.errors import StaleOwner
from powerbus.nodes.metering.ownership import Lease, LineOwnership
from powerbus.nodes.metering.store import (
    FORWARD_BULK_KWH,
    FORWARD_DELTA_KWH,
    IntervalRecord,
    ReadingStore,
    RegisterRecord,
)
from powerbus.nodes.metering.vee import IntervalValue

TTL = timedelta(seconds=10)


def owner(engines, name, clock, ttl=TTL):
    return LineOwnership(engines(), instance_id=name, ttl=ttl, clock=clock)


def test_acquire_renew_release_and_growing_tokens(engines, clock):
    a, b = owner(engines, "a", clock), owner(engines, "b", clock)
    lease = a.acquire("gw-1")
    assert lease == Lease("gw-1", "a", 1, clock.now + TTL)
    assert b.acquire("gw-1") is None
    clock.advance(timedelta(seconds=5))
    renewed = a.renew(lease)
    assert renewed.token == 1 and renewed.expires_at == clock.now + TTL
    assert a.release(renewed) and not a.release(renewed)
    taken = b.acquire("gw-1")
    assert taken is not None and taken.token == 2
    with pytest.raises(StaleOwner, match=r"gw-1: fencing token 1 is stale \(current 2\)"):
        a.renew(lease)
    assert a.acquire("gw-2").token == 1  # tokens are per gateway


def test_renew_all_renews_what_is_still_ours_in_one_go(engines, clock):
    a, b = owner(engines, "a", clock), owner(engines, "b", clock)
    first = a.acquire("gw-000")
    clock.advance(TTL / 2)
    rest = [a.acquire(f"gw-{n:03d}") for n in range(1, 450)]  # over one statement's worth
    clock.advance(TTL / 2)  # gw-000 lapsed and moves on; the others hold a while yet
    taken = b.acquire("gw-000")
    assert taken is not None
    held = [lease for lease in (first, *rest) if lease is not None]
    renewed = a.renew_all(held)
    assert [r.gateway for r in renewed] == [f"gw-{n:03d}" for n in range(1, 450)]
    assert {(r.token, r.expires_at) for r in renewed} == {(1, clock.now + TTL)}
    assert b.held() == [taken] and len(a.held()) == 449


def test_expiry_hands_the_gateway_over(engines, clock):
    a, b = owner(engines, "a", clock), owner(engines, "b", clock)
    lease = a.acquire("gw-1")
    clock.advance(TTL - timedelta(milliseconds=1))
    assert b.acquire("gw-1") is None
    clock.advance(timedelta(milliseconds=1))
    taken = b.acquire("gw-1")
    assert taken is not None and taken.token == lease.token + 1
    assert a.held() == [] and b.held() == [taken]
    with pytest.raises(StaleOwner):
        a.renew(lease)
    again = a.acquire("gw-1")
    assert again is None


def test_a_stale_owners_write_is_refused_in_the_same_transaction(engines, clock):
    a, b = owner(engines, "a", clock), owner(engines, "b", clock)
    store_a, store_b = ReadingStore(a.engine), ReadingStore(b.engine)
    old = a.acquire("gw-1")
    batch = [IntervalRecord("M1", FORWARD_DELTA_KWH, IntervalValue(end(1), 100))]
    assert store_a.write_intervals(batch, fence=old.fence).inserted == 1
    clock.advance(TTL)
    new = b.acquire("gw-1")
    late = [IntervalRecord("M1", FORWARD_DELTA_KWH, IntervalValue(end(2), 666))]
    with pytest.raises(StaleOwner):
        store_a.write_intervals(late, fence=old.fence)
    register = RegisterRecord("M1", FORWARD_BULK_KWH, end(2), 5)
    with pytest.raises(StaleOwner):
        store_a.write_registers([register], fence=old.fence)
    mine = [IntervalRecord("M1", FORWARD_DELTA_KWH, IntervalValue(end(2), 120))]
    assert store_b.write_intervals(mine, fence=new.fence).inserted == 1
    assert store_b.registers(["M1"], end(0), end(3)) == []
    stored = store_b.readings(["M1"], end(0), end(3))
    assert [s.value.wh for s in stored] == [100, 120]


def test_rebalance_shares_lines_fairly_and_moves_them_off_a_dead_instance(engines, clock):
    gateways = [f"gw-{i:02d}" for i in range(10)]
    a, b, c = (owner(engines, n, clock) for n in "abc")
    assert len(a.rebalance(gateways)) == 10  # alone: every line
    b.rebalance(gateways)
    c.rebalance(gateways)
    for _ in range(3):  # each sheds its surplus, the others take it up
        held = {n: o.rebalance(gateways) for n, o in zip("abc", (a, b, c), strict=True)}
    counts = sorted(len(v) for v in held.values())
    assert counts == [3, 3, 4]
    owned = [lease.gateway for leases in held.values() for lease in leases]
    assert sorted(owned) == gateways  # every line, once
    clock.advance(TTL)  # c dies: it stops renewing
    for _ in range(2):
        held = {n: o.rebalance(gateways) for n, o in (("a", a), ("b", b))}
    assert sorted(lease.gateway for v in held.values() for lease in v) == gateways
    assert sorted(len(v) for v in held.values()) == [5, 5]
    a.leave()
    assert a.held() == [] and "a" not in b.live_instances()


class LoggedOwnership(LineOwnership):
    """Logs every release, so the test knows when a lease ended early."""

    def __init__(self, *args, released, **kwargs):
        super().__init__(*args, **kwargs)
        self.released = released

    def release(self, lease):
        # Read before releasing: the release's own clock reading is later, so another
        # instance's acquisition can never seem to come before the logged release.
        before = datetime.now(timezone.utc)
        done = super().release(lease)
        if done:
            self.released.append((lease.gateway, lease.token, before))
        return done


def test_concurrent_instances_never_hold_a_gateway_together(engines):
    """Three instances, each on its own engine and thread, rebalance and write under
    their fences while short leases expire and move (each stalls past the TTL now and
    then). Every grant's validity is [expires_at - ttl, expires_at]; a token's first
    grant may not begin before the previous token's last validity ended or it was
    released. Every accepted write is stored once, and a refused one not at all."""
    gateways = [f"gw-{i}" for i in range(6)]
    ttl = timedelta(milliseconds=400)
    grants: list[tuple[str, int, str, datetime]] = []  # gateway, token, owner, expires_at
    released: list[tuple[str, int, datetime]] = []
    accepted: list[tuple[str, int]] = []
    refused: list[tuple[str, int]] = []
    lock = threading.Lock()
    stop = time.monotonic() + 2.0
    # A loaded machine may run 2 s without a stale write; go on (bounded) until one.
    cap = stop + 8.0
    errors: list[BaseException] = []

    def run(name: str, stall_every: int, stall: float) -> None:
        try:
            me = LoggedOwnership(engines(), instance_id=name, ttl=ttl, released=released)
            store = ReadingStore(me.engine)
            k = 0
            while time.monotonic() < stop or (not refused and time.monotonic() < cap):
                k += 1
                leases = me.rebalance(gateways)
                with lock:
                    grants.extend((x.gateway, x.token, name, x.expires_at) for x in leases)
                if k % stall_every == 0:
                    time.sleep(ttl.total_seconds() * stall)  # a pause past the TTL
                for x in leases:
                    key = (f"{x.gateway}/{name}", k)
                    batch = [IntervalRecord(key[0], FORWARD_DELTA_KWH, IntervalValue(end(k), k))]
                    try:
                        store.write_intervals(batch, fence=x.fence)
                    except StaleOwner:
                        with lock:
                            refused.append(key)
                        continue
                    with lock:
                        accepted.append(key)
                time.sleep(0.02)
            me.leave()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=args)
        for args in (("a", 3, 3.0), ("b", 7, 1.5), ("c", 11, 1.5))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    assert accepted and refused, (len(accepted), len(refused))
    owners: dict[tuple[str, int], set[str]] = defaultdict(set)
    first: dict[tuple[str, int], datetime] = {}
    last: dict[tuple[str, int], datetime] = {}
    for gateway, token, name, until in grants:
        key = (gateway, token)
        owners[key].add(name)
        first[key] = min(first.get(key, until), until - ttl)
        last[key] = max(last.get(key, until), until)
    for gateway, token, at in released:
        last[(gateway, token)] = min(last[(gateway, token)], at)
    assert all(len(names) == 1 for names in owners.values())
    handovers = 0
    for gateway in gateways:
        tokens = sorted(t for g, t in first if g == gateway)
        handovers += len(tokens) - 1
        for t1, t2 in itertools.pairwise(tokens):
            assert first[(gateway, t2)] >= last[(gateway, t1)], (gateway, t1, t2)
    assert handovers >= len(gateways), "too few handovers to prove anything"
    meters = sorted({m for m, _ in accepted + refused})
    rows = ReadingStore(engines()).readings(meters, end(0), end(10_000))
    assert sorted((s.meter_id, s.value.wh) for s in rows) == sorted(accepted)
