"""The Modbus line against a scripted Modbus TCP gateway on 127.0.0.1: exception codes,
short replies, garbage and silence become typed errors, and the line keeps working; a
line's poll, chained in callbacks, keeps each failure to its meter (a terminal's to all
its channels), reconnects after a dropped stream and makes way for an on-demand read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from powerbus.adapters.meters import (
    DeviceRejected,
    FrameError,
    FrameProblem,
    GatewayUnreachable,
    LineConfig,
    MeterError,
    MeterReading,
    MeterSpec,
    MeterTimeout,
    Model,
    WireProtocol,
)
from powerbus.adapters.modbus import ModbusDriver, ModbusLine, Table
from powerbus.bus.kernel.addresses import HostPort

CONFIG = LineConfig(request_timeout=timedelta(seconds=0.25))


def reply(request: bytes, pdu: bytes) -> bytes:
    """A Modbus TCP reply to ``request`` carrying ``pdu``."""
    return request[:4] + (len(pdu) + 1).to_bytes(2, "big") + request[6:7] + pdu


def registers(request: bytes, count: int) -> bytes:
    return reply(request, bytes((request[7], 2 * count)) + bytes(range(2 * count)))


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[HostPort, list[str]]]:
    script: list[str] = []
    tasks: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            while True:
                header = await reader.readexactly(7)
                request = header + await reader.readexactly(int.from_bytes(header[4:6], "big") - 1)
                count = int.from_bytes(request[10:12], "big")
                action, _, delay = script.pop(0).partition("@")
                await asyncio.sleep(float(delay or 0))
                if action == "good":
                    writer.write(registers(request, count))
                elif action == "short":
                    writer.write(registers(request, count - 1))
                elif action == "split":  # a good reply in two TCP segments
                    whole = registers(request, count)
                    writer.write(whole[:5])
                    await writer.drain()
                    await asyncio.sleep(0.01)
                    writer.write(whole[5:])
                elif action == "garbage":
                    writer.write(b"\x13\x37" * 9)
                elif action == "flood":  # more bytes than any Modbus TCP frame, none a reply
                    writer.write(b"\x13\x37" * 200)
                elif action.startswith("exception"):
                    code = int(action.split(":")[1], 16)
                    writer.write(reply(request, bytes((request[7] | 0x80, code))))
                # "silent": nothing
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
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


@pytest.mark.parametrize(
    ("action", "error", "retriable"),
    [
        ("exception:02", DeviceRejected, False),
        ("exception:04", DeviceRejected, False),
        ("exception:06", DeviceRejected, True),
        ("exception:0B", MeterTimeout, True),
        ("exception:0A", GatewayUnreachable, True),
        ("short", FrameError, True),
        ("garbage", FrameError, True),
        ("flood", FrameError, True),
        ("silent", MeterTimeout, True),
    ],
)
async def test_failures_are_typed_and_the_line_recovers(
    gateway: tuple[HostPort, list[str]], action: str, error: type[MeterError], retriable: bool
) -> None:
    address, script = gateway
    script += [action, "good"]
    line = ModbusLine(address, config=CONFIG)
    try:
        with pytest.raises(error) as caught:
            await line.read(meter="S1", unit=3, table=Table.INPUT, address=0x48, count=4)
        assert caught.value.meter == "S1" and caught.value.gateway == str(address)
        assert caught.value.retriable is retriable
        if action == "short":
            assert isinstance(caught.value, FrameError)
            assert caught.value.reason is FrameProblem.TRUNCATED
        if action == "flood":  # given up on at once, not at the deadline
            assert isinstance(caught.value, FrameError)
            assert caught.value.reason is FrameProblem.GARBAGE
            assert "none a reply" in str(caught.value), caught.value
        words = await line.read(meter="S1", unit=3, table=Table.HOLDING, address=0, count=4)
        assert words == [0x0001, 0x0203, 0x0405, 0x0607]
    finally:
        await line.close()


async def test_nothing_listening_is_unreachable() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    line = ModbusLine(HostPort("127.0.0.1", port), config=CONFIG)
    with pytest.raises(GatewayUnreachable):
        await line.read(meter="S1", unit=1, table=Table.INPUT, address=0, count=2)
    await line.close()


def meter(meter_id: str, address: HostPort, unit: str, model: Model = Model.SDM120) -> MeterSpec:
    constant = 1000 if model is Model.PULSE8 else None
    return MeterSpec(meter_id, WireProtocol.MODBUS, address, unit, model, constant)


async def test_a_line_poll_keeps_each_failure_to_its_meter(
    gateway: tuple[HostPort, list[str]],
) -> None:
    address, script = gateway
    meters = [
        meter("S0", address, "1"),
        meter("S1", address, "2"),
        meter("P1", address, "3/1", Model.PULSE8),
        meter("S3", address, "4"),
        meter("P2", address, "3/2", Model.PULSE8),
        meter("S5", address, "5"),
    ]
    # S1 garbage and the terminal silence (each drops the stream), S3 an exception
    script += ["good", "garbage", "silent", "exception:02", "good"]
    driver = ModbusDriver(address, config=CONFIG)
    try:
        results = await driver.read_many(meters)
    finally:
        await driver.close()
    assert [(type(r).__name__, getattr(r, "meter", None)) for r in results] == [
        ("MeterReading", None),
        ("FrameError", "S1"),
        ("MeterTimeout", "P1"),
        ("DeviceRejected", "S3"),
        ("MeterTimeout", "P2"),
        ("MeterReading", None),
    ]
    assert [r.meter_id for r in results if isinstance(r, MeterReading)] == ["S0", "S5"]
    assert not script, "a read was made twice or skipped"


async def test_a_line_poll_makes_way_for_an_on_demand_read(
    gateway: tuple[HostPort, list[str]],
) -> None:
    address, script = gateway
    meters = [meter(f"S{unit}", address, str(unit)) for unit in range(1, 7)]
    script += ["good@0.02"] * (len(meters) + 1)
    driver = ModbusDriver(address, config=CONFIG)
    try:
        poll = asyncio.create_task(driver.read_many(meters))
        await asyncio.sleep(0.03)  # inside the first meter
        words = await driver.line.read(meter="NOW", unit=9, table=Table.INPUT, address=0, count=2)
        assert words == [0x0001, 0x0203]
        assert not poll.done(), "the on-demand read waited for the whole poll"
        results = await asyncio.wait_for(poll, 5)
    finally:
        await driver.close()
    assert [r.meter_id for r in results if isinstance(r, MeterReading)] == [
        m.meter_id for m in meters
    ]


async def test_a_line_poll_takes_a_reply_that_comes_in_pieces(
    gateway: tuple[HostPort, list[str]],
) -> None:
    """A reply in two segments goes through the exchange's framer; the values are the
    ones a whole reply gives."""
    address, script = gateway
    meters = [
        meter("S0", address, "1"),
        meter("S1", address, "2"),
        meter("P1", address, "3/1", Model.PULSE8),
        meter("P2", address, "3/2", Model.PULSE8),
    ]
    script += ["good", "split", "split"]
    driver = ModbusDriver(address, config=CONFIG)
    try:
        results = await driver.read_many(meters)
    finally:
        await driver.close()
    assert not script, "a read was made twice or skipped"
    assert all(isinstance(r, MeterReading) for r in results), results
    values = [[r.value for r in result.readings] for result in results]
    assert values[0] == values[1]  # whole and in pieces, the same registers
    # counters: words 0001 0203 → 66051 pulses on channel 1, 0405 0607 on channel 2
    assert values[2] == [float(0x00010203), 0x00010203 / 1000]
    assert values[3] == [float(0x04050607), 0x04050607 / 1000]
