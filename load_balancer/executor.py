"""Running one call with its service's fault tolerance: pick, send, report, maybe again.

The transport (the bus router forwarding raw bytes, or the SDK's proxyless client) gives
a ``send(endpoint, timeout)`` coroutine that makes one attempt and describes it as an
:class:`Attempt` without raising; everything else is here, shared by both:
the service breaker, picks that avoid the node that just failed, retries (exponential
back-off with full jitter, inside the deadline, within the retry budget,
only where safe), hedging, forking and broadcast.

On the common path (one attempt that works) this costs one pick, one report and no task.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from powerbus.load_balancer.balancer import Balancer
from powerbus.load_balancer.endpoint import Endpoint
from powerbus.load_balancer.picker import Outcome, PickRequest
from powerbus.load_balancer.refusal import Refusal
from powerbus.load_balancer.retry import FaultTolerance, HedgeSettings, RetryBudget, RetrySettings
from powerbus.load_balancer.status import StatusCode

__all__ = ["Attempt", "CallExecutor", "CallPolicy", "Send"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallPolicy:
    """How calls of one service are made (the balancer's settings aside)."""

    mode: FaultTolerance = FaultTolerance.AUTO
    timeout_s: float = 0.0
    """Deadline of calls whose caller set none; 0 leaves them without one, as the caller
    asked (the SDK gives every call a deadline of its own)."""
    retry: RetrySettings = field(default_factory=RetrySettings)
    hedge: HedgeSettings = field(default_factory=HedgeSettings)
    forks: int = 2


class Attempt:
    """One attempt on one node, as the transport saw it.

    ``reached`` is False only when the request provably never ran on the node (refused
    while connecting or while the node was shutting down): such an attempt is safe to
    repeat elsewhere whatever the method.
    """

    __slots__ = ("code", "endpoint", "latency_s", "note", "reached", "value")

    def __init__(self, code: StatusCode, value: object, *, reached: bool = True) -> None:
        self.code = code
        self.value = value
        self.reached = reached
        self.endpoint: Endpoint | None = None
        self.latency_s = 0.0
        self.note = ""
        """Why the call ended here although it failed (e.g. the retry budget)."""

    @property
    def ok(self) -> bool:
        return self.code is StatusCode.OK


Send = Callable[[Endpoint, "float | None"], Awaitable[Attempt]]


_MULTIPLYING = (FaultTolerance.FAILOVER, FaultTolerance.FORKING, FaultTolerance.BROADCAST)


class CallExecutor:
    """Calls of one service under one policy.

    >>> # executor = CallExecutor(balancer, policy)
    >>> # result = await executor.run(PickRequest(method=path), send, idempotent=True,
    >>> #                             side_effect_free=False, deadline=time.monotonic() + 5)
    """

    def __init__(
        self,
        balancer: Balancer,
        policy: CallPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.balancer = balancer
        self.policy = policy or CallPolicy()
        self.budget = RetryBudget(self.policy.retry)
        self._clock = clock
        self._sleep = sleep

    def configure(self, policy: CallPolicy) -> None:
        self.policy = policy
        self.budget = RetryBudget(policy.retry)

    def mode(self, *, idempotent: bool) -> FaultTolerance:
        """The mode a call of this idempotency runs in."""
        mode = self.policy.mode
        if mode is FaultTolerance.AUTO:
            return FaultTolerance.FAILOVER if idempotent else FaultTolerance.FAILFAST
        # Any mode that may run one call on several nodes runs a non-idempotent method on
        # one only: a payment posted twice because a policy said broadcast is not a policy.
        if mode in _MULTIPLYING and not idempotent:
            return FaultTolerance.FAILFAST
        return mode

    async def run(
        self,
        request: PickRequest,
        send: Send,
        *,
        idempotent: bool,
        side_effect_free: bool = False,
        deadline: float | None,
    ) -> Attempt | Refusal:
        """Make the call; the last attempt, or the refusal if none could be made."""
        refusal = self.balancer.admit()
        if refusal is not None:
            return refusal
        mode = self.mode(idempotent=idempotent)
        if mode is FaultTolerance.BROADCAST:
            return await self._broadcast(request, send, deadline)
        if mode is FaultTolerance.FORKING:
            return await self._fork(request, send, deadline)
        hedge = self.policy.hedge
        if side_effect_free and hedge.delay_s > 0 and hedge.max_hedges > 0:
            first = await self._hedged(request, send, deadline)
        else:
            # The common path, inline (every coroutine frame costs on each resume):
            # pick, send, report.
            balancer = self.balancer
            endpoint = balancer.pick(request)
            if endpoint is None:
                return balancer.refusal()
            clock = self._clock
            start = clock()
            timeout = self._timeout(start, deadline)
            code = StatusCode.CANCELLED
            try:
                if timeout is not None and timeout <= 0:
                    first = Attempt(StatusCode.DEADLINE_EXCEEDED, None, reached=False)
                else:
                    first = await send(endpoint, timeout)
                code = first.code
            finally:
                latency = clock() - start
                balancer.report(endpoint, Outcome(code is StatusCode.OK, latency, code))
            first.endpoint = endpoint
            first.latency_s = latency
            if code is StatusCode.OK:
                return first
        if isinstance(first, Refusal) or first.ok or not self._worth_retrying(first, mode):
            return first
        return await self._retry(first, request, send, deadline, mode)

    async def _send(self, endpoint: Endpoint, send: Send, deadline: float | None) -> Attempt:
        clock = self._clock
        start = clock()
        timeout = self._timeout(start, deadline)
        code = StatusCode.CANCELLED
        try:
            if timeout is not None and timeout <= 0:
                attempt = Attempt(StatusCode.DEADLINE_EXCEEDED, None, reached=False)
            else:
                attempt = await send(endpoint, timeout)
            code = attempt.code
        finally:
            latency = clock() - start
            self.balancer.report(endpoint, Outcome(code is StatusCode.OK, latency, code))
        attempt.endpoint = endpoint
        attempt.latency_s = latency
        return attempt

    def _timeout(self, now: float, deadline: float | None) -> float | None:
        per_try = self.policy.retry.per_try_timeout_s
        left = None if deadline is None else deadline - now
        if per_try > 0:
            return per_try if left is None else min(per_try, left)
        return left

    def _worth_retrying(self, attempt: Attempt, mode: FaultTolerance) -> bool:
        if not attempt.reached:
            return True  # it never ran: safe whatever the method
        if mode is not FaultTolerance.FAILOVER:
            return False
        if attempt.code in self.policy.retry.retry_on:
            return True
        # A per-try timeout that fired before the call's own deadline.
        return (
            attempt.code is StatusCode.DEADLINE_EXCEEDED and self.policy.retry.per_try_timeout_s > 0
        )

    async def _retry(
        self,
        first: Attempt,
        request: PickRequest,
        send: Send,
        deadline: float | None,
        mode: FaultTolerance,
    ) -> Attempt | Refusal:
        settings = self.policy.retry
        attempts = [first]
        # Attempts that never reached a node (transparent retries) do not count against
        # max_attempts; a bound on all attempts remains.
        bound = settings.max_attempts + len(self.balancer.members())
        last = first
        while self._allowed(last, mode):
            if sum(a.reached for a in attempts) >= settings.max_attempts or len(attempts) >= bound:
                last.note = f"gave up after {len(attempts)} attempts"
                break
            # Exponential back-off with full jitter (AWS's "full jitter"): the n-th retry
            # waits a uniform share of base * 2^(n-1), capped.
            ceiling = settings.backoff_base_s * 2 ** (len(attempts) - 1)
            pause = random.uniform(0.0, min(settings.backoff_max_s, ceiling))
            if deadline is not None and deadline - self._clock() - pause < settings.min_attempt_s:
                last.note = "no time left for another attempt"
                break
            await self._sleep(pause)
            result = await self._again(attempts, request, send, deadline)
            if result is last or isinstance(result, Refusal):
                return result
            attempts.append(result)
            last = result
        return last

    async def _again(
        self, attempts: list[Attempt], request: PickRequest, send: Send, deadline: float | None
    ) -> Attempt | Refusal:
        """One more attempt, on another node; the previous attempt (with a note saying why)
        when none may be made."""
        previous = attempts[-1]
        assert previous.endpoint is not None
        failed_on = previous.endpoint.node_id
        # Never the node that just failed; nodes tried before only if nothing else is left.
        tried = frozenset(a.endpoint.node_id for a in attempts if a.endpoint is not None)
        budgeted = previous.reached
        if budgeted and not self.budget.acquire(active=self.balancer.active):
            previous.note = (
                f"{failed_on} failed, not retried: retry budget of service "
                f"{self.balancer.service} exhausted ({self.budget.in_flight} retries in flight)"
            )
            return previous
        try:
            endpoint = self.balancer.pick(
                PickRequest(request.method, request.key, request.exclude | tried)
            )
            if endpoint is not None and endpoint.node_id in tried and len(tried) > 1:
                self.balancer.release(endpoint)  # every node tried: any but the last
                endpoint = self.balancer.pick(
                    PickRequest(request.method, request.key, request.exclude | {failed_on})
                )
            if endpoint is None:
                return self.balancer.refusal()
            if endpoint.node_id == failed_on:
                self.balancer.release(endpoint)
                previous.note = f"not retried: no node other than {failed_on}"
                return previous
            return await self._send(endpoint, send, deadline)
        finally:
            if budgeted:
                self.budget.release()

    def _allowed(self, attempt: Attempt, mode: FaultTolerance) -> bool:
        return not attempt.ok and not attempt.note and self._worth_retrying(attempt, mode)

    async def _hedged(
        self, request: PickRequest, send: Send, deadline: float | None
    ) -> Attempt | Refusal:
        hedge = self.policy.hedge
        tasks: list[asyncio.Task[Attempt | Refusal]] = []
        used: set[str] = set()
        try:
            result: Attempt | Refusal | None = None
            for n in range(hedge.max_hedges + 1):
                if n and not self.budget.acquire(active=self.balancer.active):
                    break
                endpoint = self.balancer.pick(
                    PickRequest(request.method, request.key, request.exclude | used)
                )
                if endpoint is None or endpoint.node_id in used:
                    if endpoint is not None:
                        self.balancer.release(endpoint)
                    if n:
                        self.budget.release()
                    if not tasks:
                        return self.balancer.refusal()
                    break
                used.add(endpoint.node_id)
                tasks.append(asyncio.ensure_future(self._hedge(endpoint, send, deadline, n > 0)))
                result = await self._first_ok(tasks, timeout=hedge.delay_s)
                if result is not None:
                    return result
            result = await self._first_ok(tasks, timeout=None)
            assert result is not None
            return result
        finally:
            await _cancel(tasks)

    async def _hedge(
        self, endpoint: Endpoint, send: Send, deadline: float | None, budgeted: bool
    ) -> Attempt:
        try:
            return await self._send(endpoint, send, deadline)
        finally:
            if budgeted:
                self.budget.release()

    async def _first_ok(
        self, tasks: list[asyncio.Task[Attempt | Refusal]], *, timeout: float | None
    ) -> Attempt | Refusal | None:
        """The first OK result; the last failure once all are done; None on timeout."""
        pending = {t for t in tasks if not t.done()}
        for task in tasks:
            if task.done() and _is_ok(task.result()):
                return task.result()
        loop = asyncio.get_running_loop()
        end = None if timeout is None else loop.time() + timeout
        while pending:
            wait = None if end is None else max(0.0, end - loop.time())
            done, pending = await asyncio.wait(
                pending, timeout=wait, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                if _is_ok(task.result()):
                    return task.result()
            if not done:
                return None
        return tasks[-1].result() if tasks else None

    async def _fork(
        self, request: PickRequest, send: Send, deadline: float | None
    ) -> Attempt | Refusal:
        endpoints = self.balancer.pick_each(request, limit=max(1, self.policy.forks))
        if not endpoints:
            return self.balancer.refusal()
        tasks = [asyncio.ensure_future(self._send(e, send, deadline)) for e in endpoints]
        try:
            result = await self._first_ok(list(tasks), timeout=None)
            assert result is not None
            return result
        finally:
            await _cancel(list(tasks))

    async def _broadcast(
        self, request: PickRequest, send: Send, deadline: float | None
    ) -> Attempt | Refusal:
        endpoints = self.balancer.pick_each(request)
        if not endpoints:
            return self.balancer.refusal()
        results = await asyncio.gather(*(self._send(e, send, deadline) for e in endpoints))
        failed = [r for r in results if not r.ok]
        if failed:
            first = failed[0]
            assert first.endpoint is not None
            first.note = f"broadcast: {len(failed)} of {len(results)} nodes failed"
            return first
        return results[-1]


def _is_ok(result: Attempt | Refusal) -> bool:
    return isinstance(result, Attempt) and result.ok


async def _cancel(tasks: list[asyncio.Task[Attempt | Refusal]]) -> None:
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
