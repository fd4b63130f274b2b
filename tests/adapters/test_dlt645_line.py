"""The DL/T 645 client against a scripted gateway on 127.0.0.1: each broken reply becomes
its typed error, and the next request on the same line works (the line resynchronises)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powerbus.adapters.dlt645 import DI, Control, Dlt645Client, Frame, FrameDecoder
from powerbus.adapters.dlt645.bcd import encode_bcd
from powerbus.adapters.dlt645.identifiers import di_bytes
from powerbus.adapters.meters import (
    DeviceRejected,
    FrameError,
    FrameProblem,
    GatewayUnreachable,
    LineConfig,
    MeterTimeout,
)
from powerbus.bus.kernel.addresses import HostPort

ADDRESS = "000102030425"
Script = Callable[[Frame], bytes | None]  # None: close the connection


def good(request: Frame, value: float = 1206.42) -> bytes:
    data = request.data[:4] + encode_bcd(value, size=4, decimals=2)
    return Frame(request.address, Control.READ_REPLY, data).encode(preamble=2)


REPLIES: dict[str, Script] = {
    "good": good,
    "truncated": lambda r: good(r)[:-5],
    "checksum": lambda r: good(r)[:-2] + bytes(((good(r)[-2] + 1) & 0xFF, 0x16)),
    "garbage": lambda r: bytes(range(0x20, 0x60)),
    "silent": lambda r: b"",
    "error": lambda r: Frame(r.address, Control.READ_ERROR, b"\x02").encode(),
    "stale": lambda r: good(r, 1.0)[:2] + good(Frame(ADDRESS, Control.READ, di_bytes(DI.POWER)))
    + good(r, 7.77),
    "other-meter": lambda r: good(Frame("999999000001", Control.READ, r.data), 5.0) + good(r, 8.88),
    "close": lambda r: None,
}  # fmt: skip


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[HostPort, list[str]]]:
    """A gateway answering each request with the next scripted reply."""
    script: list[str] = []
    tasks: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        decoder = FrameDecoder()
        try:
            while data := await reader.read(4096):
                for frame in decoder.feed(data):
                    assert isinstance(frame, Frame)
                    reply = REPLIES[script.pop(0)](frame)
                    if reply is None:
                        writer.close()
                        return
                    writer.write(reply)
        finally:
            tasks.discard(task)
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    yield HostPort("127.0.0.1", server.sockets[0].getsockname()[1]), script
    server.close()
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await server.wait_closed()


CONFIG = LineConfig(request_timeout=timedelta(seconds=0.25))


@pytest.mark.parametrize(
    ("reply", "error", "reason"),
    [
        ("truncated", FrameError, FrameProblem.TRUNCATED),
        ("checksum", FrameError, FrameProblem.CHECKSUM),
        ("garbage", FrameError, FrameProblem.GARBAGE),
        ("silent", MeterTimeout, None),
        ("error", DeviceRejected, None),
    ],
)
async def test_broken_reply_then_the_line_recovers(
    gateway: tuple[HostPort, list[str]],
    reply: str,
    error: type[Exception],
    reason: FrameProblem | None,
) -> None:
    address, script = gateway
    script += [reply, "good"]
    client = Dlt645Client(address, config=CONFIG)
    try:
        with pytest.raises(error) as caught:
            await client.read_value("M1", ADDRESS, DI.ENERGY_FORWARD)
        assert getattr(caught.value, "meter", None) == "M1"
        assert getattr(caught.value, "gateway", None) == str(address)
        if reason is not None:
            assert isinstance(caught.value, FrameError) and caught.value.reason is reason
        assert await client.read_value("M1", ADDRESS, DI.ENERGY_FORWARD) == 1206.42
    finally:
        await client.close()


@pytest.mark.parametrize(("reply", "value"), [("stale", 7.77), ("other-meter", 8.88)])
async def test_answers_to_other_requests_are_skipped(
    gateway: tuple[HostPort, list[str]], reply: str, value: float
) -> None:
    address, script = gateway
    script.append(reply)
    client = Dlt645Client(address, config=CONFIG)
    try:
        assert await client.read_value("M1", ADDRESS, DI.ENERGY_FORWARD) == value
    finally:
        await client.close()


async def test_a_dropped_connection_is_unreachable_then_reconnects(
    gateway: tuple[HostPort, list[str]],
) -> None:
    address, script = gateway
    script += ["close", "good"]
    client = Dlt645Client(address, config=CONFIG)
    try:
        with pytest.raises(GatewayUnreachable):
            await client.read_value("M1", ADDRESS, DI.ENERGY_FORWARD)
        assert await client.read_value("M1", ADDRESS, DI.ENERGY_FORWARD) == 1206.42
    finally:
        await client.close()


@settings(max_examples=40, deadline=None)
@given(prefix=st.binary(max_size=48), cut=st.integers(0, 20), chunk=st.integers(1, 16))
def test_noise_and_cut_frames_before_the_reply_over_a_socket(
    prefix: bytes, cut: int, chunk: int
) -> None:
    """Whatever precedes the reply on the wire, in whatever chunks, the client finds it."""

    handlers: list[asyncio.Task[None]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.append(task)
        decoder = FrameDecoder()
        try:
            while data := await reader.read(4096):
                for frame in decoder.feed(data):
                    assert isinstance(frame, Frame)
                    answer = good(frame)
                    wire = prefix + answer[:cut] + answer
                    for i in range(0, len(wire), chunk):
                        writer.write(wire[i : i + chunk])
                        await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def scenario() -> float:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        client = Dlt645Client(HostPort("127.0.0.1", server.sockets[0].getsockname()[1]))
        try:
            return await client.read_value("M1", ADDRESS, DI.ENERGY_FORWARD)
        finally:
            await client.close()
            await asyncio.gather(*handlers, return_exceptions=True)  # they end on EOF
            server.close()
            await server.wait_closed()

    assert asyncio.run(scenario()) == 1206.42
