"""Fault tolerance of one call: retries only where safe, never the same node twice in a row,
inside the deadline and the retry budget; hedging, forking and broadcast.

The transport here is a coroutine that plays each node's part (fail, answer, hang), so
the executor's decisions are visible without a network."""

from __future__ import annotations

import asyncio
import random
import time

from powerbus.load_balancer import (
    Attempt,
    Balancer,
    BalancerSettings,
    BreakerSettings,
    CallExecutor,
    CallPolicy,
    Endpoint,
    FaultTolerance,
    HedgeSettings,
    OutlierSettings,
    PickRequest,
    Refusal,
    RefusalReason,
    RetrySettings,
    StatusCode,
)

QUIET = BalancerSettings(
    outlier=OutlierSettings(enabled=False),
    node_breaker=BreakerSettings(enabled=False),
    service_breaker=BreakerSettings(enabled=False),
)


def balancer(*ids: str, settings: BalancerSettings = QUIET) -> Balancer:
    b = Balancer("svc", settings=settings, rng=random.Random(3))
    b.update([Endpoint(i, f"127.0.0.1:{7000 + n}") for n, i in enumerate(ids)])
    return b


class Nodes:
    """What each node does with a call: a status code, or a delay before answering OK."""

    def __init__(self, behaviour: dict[str, str | float], *, reached: bool = True) -> None:
        self.behaviour = behaviour
        self.reached = reached
        self.calls: list[str] = []
        self.cancelled: list[str] = []

    async def send(self, endpoint: Endpoint, timeout: float | None) -> Attempt:
        node = endpoint.node_id
        self.calls.append(node)
        what = self.behaviour.get(node, "OK")
        if isinstance(what, float):
            try:
                if timeout is not None and timeout < what:
                    await asyncio.sleep(timeout)
                    return Attempt(StatusCode.DEADLINE_EXCEEDED, node)
                await asyncio.sleep(what)
            except asyncio.CancelledError:
                self.cancelled.append(node)
                raise
            return Attempt(StatusCode.OK, node)
        return Attempt(StatusCode(what), node, reached=self.reached or what == "OK")


def fast(policy: CallPolicy) -> CallExecutor:
    return CallExecutor(balancer("a", "b", "c"), policy)


def policy(**retry) -> CallPolicy:
    settings = {"backoff_base_s": 0.001, "backoff_max_s": 0.002, **retry}
    return CallPolicy(retry=RetrySettings(**settings))


async def run(executor: CallExecutor, nodes: Nodes, **kwargs) -> Attempt | Refusal:
    options = {"idempotent": True, "deadline": time.monotonic() + 5, **kwargs}
    return await executor.run(PickRequest(method="/svc/M"), nodes.send, **options)


async def test_idempotent_calls_fail_over_to_another_node():
    nodes = Nodes({"a": "UNAVAILABLE"})
    result = await run(fast(policy()), nodes)
    assert isinstance(result, Attempt) and result.ok
    assert nodes.calls[0] == "a" and nodes.calls[1] != "a"


async def test_non_idempotent_calls_that_reached_a_node_are_never_retried():
    nodes = Nodes({"a": "UNAVAILABLE"})
    result = await run(fast(policy()), nodes, idempotent=False)
    assert isinstance(result, Attempt) and result.code == "UNAVAILABLE"
    assert nodes.calls == ["a"]


async def test_a_call_that_never_ran_is_retried_whatever_the_method():
    nodes = Nodes({"a": "UNAVAILABLE"}, reached=False)
    result = await run(fast(policy()), nodes, idempotent=False)
    assert isinstance(result, Attempt) and result.ok and len(nodes.calls) == 2


async def test_business_errors_are_not_retried():
    nodes = Nodes({"a": "NOT_FOUND"})
    result = await run(fast(policy()), nodes)
    assert isinstance(result, Attempt) and result.code == "NOT_FOUND" and nodes.calls == ["a"]


async def test_never_the_same_node_twice_in_a_row():
    nodes = Nodes({"a": "UNAVAILABLE", "b": "UNAVAILABLE", "c": "UNAVAILABLE"})
    executor = CallExecutor(balancer("a", "b"), policy(max_attempts=5))
    result = await run(executor, nodes)
    assert isinstance(result, Attempt) and not result.ok
    assert len(nodes.calls) == 5
    assert all(x != y for x, y in zip(nodes.calls, nodes.calls[1:], strict=False))
    assert result.note == "gave up after 5 attempts"


async def test_a_single_node_is_not_retried_on_itself():
    nodes = Nodes({"a": "UNAVAILABLE"})
    result = await run(CallExecutor(balancer("a"), policy()), nodes)
    assert isinstance(result, Attempt) and nodes.calls == ["a"]
    assert result.note == "not retried: no node other than a"


async def test_retries_stay_inside_the_deadline():
    nodes = Nodes({"a": "UNAVAILABLE", "b": "UNAVAILABLE", "c": "UNAVAILABLE"})
    executor = fast(policy(max_attempts=50, backoff_base_s=0.05, backoff_max_s=0.05))
    started = time.monotonic()
    result = await run(executor, nodes, deadline=started + 0.2)
    # 50 attempts 50 ms apart would take 2.5 s; the slack is for a loaded machine
    assert time.monotonic() - started < 1.0
    assert isinstance(result, Attempt) and not result.ok
    assert 1 < len(nodes.calls) < 50


async def test_per_try_timeout_moves_on_to_another_node():
    nodes = Nodes({"a": 2.0})
    executor = fast(policy(per_try_timeout_s=0.05))
    started = time.monotonic()
    result = await run(executor, nodes)
    assert isinstance(result, Attempt) and result.ok and result.endpoint.node_id != "a"
    assert time.monotonic() - started < 1.0


async def test_retry_budget_caps_retries_and_says_so():
    nodes = Nodes({"a": 0.05, "b": "UNAVAILABLE", "c": "UNAVAILABLE"})
    executor = CallExecutor(
        balancer("a", "b", "c"),
        policy(budget_ratio=0.0, budget_min=1, backoff_base_s=0.02, backoff_max_s=0.02),
    )
    results = await asyncio.gather(*(run(executor, nodes) for _ in range(12)))
    notes = [r.note for r in results if isinstance(r, Attempt) and not r.ok]
    assert any(
        n.endswith(
            "failed, not retried: retry budget of service svc exhausted (1 retries in flight)"
        )
        for n in notes
    )
    assert executor.budget.refused > 0 and executor.budget.in_flight == 0


async def test_hedging_asks_another_node_when_the_first_is_slow():
    nodes = Nodes({"a": 1.0})
    executor = fast(CallPolicy(hedge=HedgeSettings(delay_s=0.02, max_hedges=1)))
    started = time.monotonic()
    result = await run(executor, nodes, side_effect_free=True)
    assert isinstance(result, Attempt) and result.ok and result.endpoint.node_id != "a"
    assert time.monotonic() - started < 0.5
    assert nodes.cancelled == ["a"]
    assert executor.balancer.active == 0


async def test_hedging_is_only_for_methods_without_side_effects():
    nodes = Nodes({"a": 0.1})
    executor = fast(CallPolicy(hedge=HedgeSettings(delay_s=0.01)))
    await run(executor, nodes, side_effect_free=False)
    assert nodes.calls == ["a"]


async def test_forking_takes_the_first_success():
    nodes = Nodes({"a": 0.5, "b": 0.01})
    executor = fast(CallPolicy(mode=FaultTolerance.FORKING, forks=2))
    result = await run(executor, nodes)
    assert isinstance(result, Attempt) and result.endpoint.node_id == "b"
    assert sorted(nodes.calls) == ["a", "b"] and nodes.cancelled == ["a"]


async def test_forking_a_non_idempotent_method_fails_fast_instead():
    nodes = Nodes({})
    executor = fast(CallPolicy(mode=FaultTolerance.FORKING, forks=3))
    await run(executor, nodes, idempotent=False)
    assert len(nodes.calls) == 1


async def test_broadcast_calls_every_node_once_and_fails_if_one_fails():
    nodes = Nodes({"b": "INTERNAL"})
    executor = fast(CallPolicy(mode=FaultTolerance.BROADCAST))
    result = await run(executor, nodes, idempotent=True)
    assert sorted(nodes.calls) == ["a", "b", "c"]
    assert isinstance(result, Attempt) and result.code == "INTERNAL"
    assert result.note == "broadcast: 1 of 3 nodes failed"


async def test_broadcast_runs_a_non_idempotent_method_on_one_node_only():
    nodes = Nodes({})
    executor = fast(CallPolicy(mode=FaultTolerance.BROADCAST))
    result = await run(executor, nodes, idempotent=False)
    assert len(nodes.calls) == 1
    assert isinstance(result, Attempt) and result.code == "OK"


async def test_an_open_service_breaker_refuses_before_any_attempt():
    settings = BalancerSettings(
        service_breaker=BreakerSettings(window=4, min_calls=4, failure_ratio=0.5, open_s=30)
    )
    executor = CallExecutor(balancer("a", "b", settings=settings), policy(max_attempts=1))
    nodes = Nodes({"a": "UNAVAILABLE", "b": "UNAVAILABLE"})
    for _ in range(4):
        await run(executor, nodes)
    before = len(nodes.calls)
    result = await run(executor, nodes)
    assert isinstance(result, Refusal) and result.reason is RefusalReason.SERVICE_BREAKER_OPEN
    assert len(nodes.calls) == before


async def test_no_node_is_a_refusal():
    result = await run(CallExecutor(balancer(), policy()), Nodes({}))
    assert isinstance(result, Refusal) and result.reason is RefusalReason.NO_NODE


async def test_a_cancelled_call_is_reported_and_leaves_nothing_in_flight():
    nodes = Nodes({"a": 5.0, "b": 5.0, "c": 5.0})
    executor = fast(policy())
    task = asyncio.ensure_future(run(executor, nodes))
    await asyncio.sleep(0.02)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert executor.balancer.active == 0
