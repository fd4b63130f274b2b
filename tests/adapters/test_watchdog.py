"""Deadlines on one shared timer: each watchdog expires at its own deadline, a deadline
moved later is kept, and a disarmed one never fires."""

from __future__ import annotations

import asyncio

from powerbus.adapters.meters.watchdog import DeadlineTimer, Watchdog


async def test_one_timer_expires_each_watchdog_at_its_own_deadline() -> None:
    loop = asyncio.get_running_loop()
    timer = DeadlineTimer()
    fired: dict[str, float] = {}
    short, moved, disarmed = (Watchdog(t, timer=timer) for t in (0.05, 0.05, 0.05))

    def expire(name: str) -> None:
        fired[name] = loop.time() - start

    def on_short() -> None:
        expire("short")

    def on_moved() -> None:
        expire("moved")

    def on_disarmed() -> None:
        expire("disarmed")

    start = loop.time()
    short.arm(on_short)
    moved.arm(on_moved)
    disarmed.arm(on_disarmed)
    disarmed.disarm(on_disarmed)
    await asyncio.sleep(0.03)
    moved.deadline = moved.clock() + moved.timeout  # the next request on that line
    for _ in range(50):  # bounded: 50 x 10 ms
        if len(fired) == 2:
            break
        await asyncio.sleep(0.01)
    timer.close()
    assert set(fired) == {"short", "moved"}
    assert 0.05 <= fired["short"] < fired["moved"]
    assert fired["moved"] >= 0.08  # its deadline moved 30 ms later, and was kept
