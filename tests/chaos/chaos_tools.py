"""Chaos helpers, imported by the chaos tests: steady client load with every call's outcome,
a process throttle, and policy and balancer views of a running bus."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc

from powerbus.policy.v1 import policy_pb2, policy_pb2_grpc


@dataclass(frozen=True)
class Result:
    started: float
    latency: float
    node: str
    code: str
    details: str = ""


@dataclass
class Load:
    """``workers`` loops calling ``call`` back to back until stopped; every result kept."""

    call: Callable[[], Awaitable[str]]
    workers: int = 4
    results: list[Result] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def __aenter__(self) -> Load:
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def _worker(self) -> None:
        deadline = time.monotonic() + 60  # bounded even if a test forgets to stop it
        while not self._stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            details = ""
            try:
                node, code = await self.call(), "OK"
            except grpc.aio.AioRpcError as error:
                node, code, details = "", error.code().name, error.details() or ""
            self.results.append(Result(started, time.monotonic() - started, node, code, details))
            await asyncio.sleep(0.002)

    def since(self, moment: float) -> list[Result]:
        return [r for r in self.results if r.started >= moment]

    async def run_for(self, seconds: float) -> float:
        """Let the load run ``seconds``; returns when that window started."""
        start = time.monotonic()
        await asyncio.sleep(seconds)
        return start


class Throttle:
    """Slows a process down for real: SIGSTOP for ``stopped_s`` out of every ``period_s``."""

    def __init__(self, pid: int, *, stopped_s: float, period_s: float) -> None:
        self._pid = pid
        self._stopped_s, self._period_s = stopped_s, period_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="throttle", daemon=True)

    def __enter__(self) -> Throttle:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(5)
        os.kill(self._pid, signal.SIGCONT)

    def _run(self) -> None:
        end = time.monotonic() + 60
        while not self._done.is_set() and time.monotonic() < end:
            os.kill(self._pid, signal.SIGSTOP)
            self._done.wait(self._stopped_s)
            os.kill(self._pid, signal.SIGCONT)
            self._done.wait(self._period_s - self._stopped_s)


async def set_policy(bus_address: str, service: str, **settings: str) -> None:
    async with grpc.aio.insecure_channel(bus_address) as channel:
        await policy_pb2_grpc.PoliciesStub(channel).SetPolicy(
            policy_pb2.SetPolicyRequest(service=service, set=settings, updated_by="chaos"),
            timeout=5,
        )


def balancer_nodes(http_address: str, service: str) -> dict[str, dict[str, object]]:
    """The bus's view of each node of ``service`` (``/api/balancers``)."""
    url = f"http://{http_address}/api/balancers?service={service}"
    with urllib.request.urlopen(url, timeout=5) as response:
        found = json.loads(response.read())["balancers"]
    return {n["node_id"]: n for n in found[0]["nodes"]} if found else {}
