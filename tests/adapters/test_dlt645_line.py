"""The DL/T 645 client against a scripted gateway on 127.0.0.1: each broken reply becomes
its typed error, and the next request on the same line works (the line resynchronises);
a line's energy poll, chained in callbacks, keeps each failure to its meter, makes way
for an on-demand request, reconnects after a dropped connection and can be cancelled."""

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
    MeterReading,
    MeterSpec,
    MeterTimeout,
    Model,
    Quantity,
    WireProtocol,
)
from powerbus.bus.kernel.addresses import HostPort

ADDRESS = "000102030425"
Script = Callable[[Frame], bytes | None]  # None: close the connection


BLOCK = di_bytes(DI.ENERGY_FORWARD_BLOCK)


def good(request: Frame, value: float = 1206.42) -> bytes:
    # a block read answers total and rates 1..4; any other read one value
    values = 5 if request.data[:4] == BLOCK else 1
    data = request.data[:4] + encode_bcd(value, size=4, decimals=2) * values
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
    """A gateway answering each request with the next scripted reply ("NAME" or, to
    answer late, "NAME@SECONDS"; "split": a good reply in two pieces)."""
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
                    name, _, delay = script.pop(0).partition("@")  # "good@0.02": 20 ms late
                    if delay:
                        await asyncio.sleep(float(delay))
                    if name == "split":  # a good reply in two TCP segments
                        whole = good(frame)
                        writer.write(whole[:9])
                        await writer.drain()
                        await asyncio.sleep(0.01)
                        writer.write(whole[9:])
                        continue
                    reply = REPLIES[name](frame)
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


def specs(address: HostPort, count: int) -> list[MeterSpec]:
    return [
        MeterSpec(f"M{i}", WireProtocol.DLT645, address, f"0001020304{i:02d}", Model.DLT645)
        for i in range(count)
    ]


async def test_a_line_poll_keeps_each_failure_to_its_meter(
    gateway: tuple[HostPort, list[str]],
) -> None:
    address, script = gateway
    # M0 whole; M1's block read gets no answer; M2's reverse read a bad checksum; M3 whole
    script += ["good", "good", "silent", "good", "checksum", "good", "good"]
    client = Dlt645Client(address, config=CONFIG)
    try:
        results = await client.read_many(specs(address, 4))
    finally:
        await client.close()
    assert [type(r).__name__ for r in results] == [
        "MeterReading", "MeterTimeout", "FrameError", "MeterReading",
    ]  # fmt: skip
    assert [getattr(r, "meter", None) for r in results[1:3]] == ["M1", "M2"]
    reading = results[3]
    assert isinstance(reading, MeterReading) and reading.meter_id == "M3"
    forward = [r for r in reading.readings if r.quantity is Quantity.ENERGY_FORWARD]
    assert [(r.tou, r.value) for r in forward] == [(tou, 1206.42) for tou in range(5)]
    assert [r.value for r in reading.readings if r.quantity is Quantity.ENERGY_REVERSE] == [1206.42]


async def test_a_line_poll_makes_way_for_an_on_demand_read(
    gateway: tuple[HostPort, list[str]],
) -> None:
    """The poll holds the line across meters, but gives it up between two meters when a
    request is waiting, and takes it back after."""
    address, script = gateway
    script += ["good@0.02"] * (2 * 6 + 1)
    client = Dlt645Client(address, config=CONFIG)
    try:
        poll = asyncio.create_task(client.read_many(specs(address, 6)))
        await asyncio.sleep(0.03)  # inside the first meter
        assert await client.read_value("ON-DEMAND", ADDRESS, DI.ENERGY_FORWARD) == 1206.42
        assert not poll.done(), "the on-demand read waited for the whole poll"
        results = await asyncio.wait_for(poll, 5)
    finally:
        await client.close()
    assert all(isinstance(r, MeterReading) for r in results)
    assert [r.meter_id for r in results if isinstance(r, MeterReading)] == [
        f"M{i}" for i in range(6)
    ]


async def test_a_line_poll_reconnects_after_a_dropped_connection(
    gateway: tuple[HostPort, list[str]],
) -> None:
    address, script = gateway
    script += ["good", "good", "close", "good", "good"]
    client = Dlt645Client(address, config=CONFIG)
    try:
        results = await client.read_many(specs(address, 3))
    finally:
        await client.close()
    assert [type(r).__name__ for r in results] == [
        "MeterReading", "GatewayUnreachable", "MeterReading",
    ]  # fmt: skip
    assert getattr(results[1], "meter", None) == "M1"
    assert not script, "a read was made twice or skipped"


async def test_a_cancelled_line_poll_leaves_the_line_usable(
    gateway: tuple[HostPort, list[str]],
) -> None:
    address, script = gateway
    script += ["good@0.05"] * 4 + ["good"]
    client = Dlt645Client(address, config=CONFIG)
    try:
        poll = asyncio.create_task(client.read_many(specs(address, 4)))
        await asyncio.sleep(0.03)
        poll.cancel()
        with pytest.raises(asyncio.CancelledError):
            await poll
        # The abandoned exchange's late answer is not taken for this one (another DI).
        assert await client.read_value("M9", ADDRESS, DI.ENERGY_FORWARD) == 1206.42
    finally:
        await client.close()


async def test_a_line_poll_finds_replies_that_come_in_pieces_or_after_others(
    gateway: tuple[HostPort, list[str]],
) -> None:
    """What the poll does not take at a glance (a reply in pieces, an earlier request's
    or another meter's reply first) goes through the resynchronising exchange, and the
    values are the same as a single read gets."""
    address, script = gateway
    # per meter: the forward block read, then the reverse total read
    script += ["stale", "good", "split", "other-meter", "good", "good", "split", "split"]
    client = Dlt645Client(address, config=CONFIG)
    try:
        results = await client.read_many(specs(address, 4))
    finally:
        await client.close()
    assert not script, "a read was made twice or skipped"

    def energies(result: object) -> tuple[list[float], list[float]]:
        assert isinstance(result, MeterReading), result

        def values(q: Quantity) -> list[float]:
            return [r.value for r in result.readings if r.quantity is q]

        return values(Quantity.ENERGY_FORWARD), values(Quantity.ENERGY_REVERSE)

    assert [energies(r) for r in results] == [
        ([7.77] * 5, [1206.42]),
        ([1206.42] * 5, [8.88]),
        ([1206.42] * 5, [1206.42]),
        ([1206.42] * 5, [1206.42]),
    ]
    assert [r.meter_id for r in results if isinstance(r, MeterReading)] == ["M0", "M1", "M2", "M3"]
