"""The protocol server and client over real loopback sockets: each malformed class gets
a clear answer or a clean close, never a dead server or a lost earlier message."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from bank_support import ACCOUNTS, BANK, MemoryUtility

from powerbus.adapters.bank import (
    ArrearsQuery,
    CollectionClient,
    Header,
    KeyRing,
    Message,
    MessageCodec,
    MsgType,
    PaymentChannel,
    ProtocolClient,
    ProtocolError,
    ProtocolServer,
    RespCode,
    TxnCode,
    collection_dispatcher,
    frame,
)
from powerbus.adapters.bank.sim.faults import Malformed, corrupt
from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.errors import DeadlineExceeded, NotFound, PowerbusError, Unavailable
from powerbus.nodes.testing.waiting import eventually

SECOND = dt.timedelta(seconds=1)
DAY = dt.date(2026, 12, 4)


def query(serial: str, codec: MessageCodec) -> bytes:
    head = Header(
        txn_code=TxnCode.ARREARS_QUERY,
        msg_type=MsgType.REQUEST,
        bank_code=BANK,
        serial=serial,
        sent_at=dt.datetime(2026, 12, 4, 10),
    )
    return codec.encode(Message(head, ArrearsQuery(account_id=ACCOUNTS[0])))


async def raw_exchange(address: HostPort, data: bytes, codec: MessageCodec) -> list[Message]:
    """Send bytes on a fresh connection, half-close, read every reply until the server closes."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(address.host, address.port), 2)
    writer.write(data)
    await writer.drain()
    writer.write_eof()
    raw = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    await writer.wait_closed()
    out = []
    while raw:
        size = int(raw[:6])
        out.append(codec.decode(raw[6 : 6 + size]))
        raw = raw[6 + size :]
    return out


async def test_collections_over_loopback(
    utility_server: ProtocolServer, codec: MessageCodec, utility: MemoryUtility
) -> None:
    async with CollectionClient(
        address=utility_server.address, codec=codec, bank_code=BANK, timeout=SECOND
    ) as client:
        due = await client.query_arrears(ACCOUNTS[1])
        paid = await client.collect(
            serial="B1", account_id=ACCOUNTS[1], amount=due.total_due, settlement_date=DAY
        )
        again = await client.collect(
            serial="B1", account_id=ACCOUNTS[1], amount=due.total_due, settlement_date=DAY
        )
        reversed_ = await client.reverse(serial="R1", original_serial="B1", amount=due.total_due)
        with pytest.raises(NotFound, match="1001"):
            await client.query_arrears("nobody")
    assert (paid.duplicate, again.duplicate, again.payment_id) == (False, True, paid.payment_id)
    assert reversed_.payment_id == paid.payment_id
    assert utility.entries["B1"].status.value == "REVERSED"


async def test_bad_mac_and_gbk_garbage_are_answered_and_the_connection_carries_on(
    utility_server: ProtocolServer, codec: MessageCodec, keys: KeyRing
) -> None:
    stream = (
        query("Q1", codec)
        + corrupt(query("Q2", codec), Malformed.BAD_MAC, keys=keys, bank_code=BANK)
        + corrupt(query("Q3", codec), Malformed.GBK_GARBAGE, keys=keys, bank_code=BANK)
        + query("Q4", codec)
    )
    replies = await raw_exchange(utility_server.address, stream, codec)
    assert [(m.header.serial, m.header.resp_code) for m in replies] == [
        ("Q1", RespCode.OK),
        ("Q2", RespCode.MAC_ERROR),
        ("Q3", RespCode.FORMAT_ERROR),
        ("Q4", RespCode.OK),
    ]
    assert "resp_msg" in replies[2].header.resp_msg
    assert utility_server.stats.errors == {"MacMismatch": 1, "EncodingError": 1}


async def test_a_bad_length_header_closes_only_that_connection_after_earlier_replies(
    utility_server: ProtocolServer, codec: MessageCodec, keys: KeyRing
) -> None:
    bad = corrupt(query("Q2", codec), Malformed.BAD_LENGTH, keys=keys, bank_code=BANK)
    replies = await raw_exchange(utility_server.address, query("Q1", codec) + bad, codec)
    assert [m.header.serial for m in replies] == ["Q1"]
    assert utility_server.stats.errors["FramingError"] == 1
    assert "length: at byte" in utility_server.stats.recent[-1]
    # The server still serves everyone else.
    again = await raw_exchange(utility_server.address, query("Q3", codec), codec)
    assert [m.header.serial for m in again] == ["Q3"]


async def test_a_truncated_frame_is_recorded_and_earlier_messages_were_answered(
    utility_server: ProtocolServer, codec: MessageCodec, keys: KeyRing
) -> None:
    cut = corrupt(query("Q2", codec), Malformed.TRUNCATED, keys=keys, bank_code=BANK)
    replies = await raw_exchange(utility_server.address, query("Q1", codec) + cut, codec)
    assert [m.header.serial for m in replies] == ["Q1"]
    assert utility_server.stats.errors == {"TruncatedMessage": 1}


async def test_a_frame_too_short_for_a_header_gets_no_reply_but_keeps_the_connection(
    utility_server: ProtocolServer, codec: MessageCodec
) -> None:
    replies = await raw_exchange(utility_server.address, frame(b"10") + query("Q9", codec), codec)
    assert [m.header.serial for m in replies] == ["Q9"]
    assert utility_server.stats.errors == {"TruncatedMessage": 1}


class Broken(MemoryUtility):
    async def query_arrears(self, header: Header, request: ArrearsQuery):  # type: ignore[no-untyped-def]
        if request.account_id == ACCOUNTS[2]:
            await asyncio.sleep(5)
        raise RuntimeError("handler bug")


async def test_handler_bugs_and_slow_handlers_are_answered(codec: MessageCodec) -> None:
    server = ProtocolServer(
        codec=codec,
        handler=collection_dispatcher(Broken(), bank_code=BANK),
        handler_timeout=dt.timedelta(seconds=0.2),
    )
    async with (
        server,
        CollectionClient(
            address=server.address, codec=codec, bank_code=BANK, timeout=SECOND
        ) as client,
    ):
        with pytest.raises(PowerbusError, match="replied 9999"):
            await client.query_arrears(ACCOUNTS[0])
        with pytest.raises(DeadlineExceeded, match="9099"):
            await client.query_arrears(ACCOUNTS[2])
        assert (
            await client.collect(
                serial="B1",
                account_id=ACCOUNTS[0],
                amount=5,
                settlement_date=DAY,
                channel=PaymentChannel.ONLINE_BANKING,
            )
        ).amount == 5


async def test_a_request_for_another_bank_is_refused(utility: MemoryUtility) -> None:
    keys = KeyRing({BANK: b"k", "0105": b"k5"})
    server = ProtocolServer(
        codec=MessageCodec(keys), handler=collection_dispatcher(utility, bank_code=BANK)
    )
    async with (
        server,
        CollectionClient(
            address=server.address, codec=MessageCodec(keys), bank_code="0105", timeout=SECOND
        ) as client,
    ):
        with pytest.raises(ProtocolError, match="9004"):
            await client.query_arrears(ACCOUNTS[0])


async def test_a_bank_without_a_key_is_not_answered(utility_server: ProtocolServer) -> None:
    stranger = MessageCodec(KeyRing({"0105": b"k"}))
    async with CollectionClient(
        address=utility_server.address,
        codec=stranger,
        bank_code="0105",
        timeout=dt.timedelta(seconds=0.3),
    ) as client:
        # Its MAC cannot verify and no reply can be signed for it: the call meets its
        # deadline, and the server counts the refusal.
        with pytest.raises(DeadlineExceeded):
            await client.query_arrears(ACCOUNTS[0])
    assert utility_server.stats.errors == {"MacMismatch": 1}


async def test_the_client_deadline_and_an_unreachable_peer(codec: MessageCodec) -> None:
    held: list[asyncio.StreamWriter] = []

    async def never_answer(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        held.append(w)

    silent = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    async with ProtocolClient(
        address=HostPort("127.0.0.1", port), codec=codec, bank_code=BANK
    ) as client:
        with pytest.raises(DeadlineExceeded, match="no reply to ARREARS_QUERY Q1"):
            await client.call(
                ArrearsQuery(account_id="A"), serial="Q1", timeout=dt.timedelta(seconds=0.1)
            )
    for w in held:
        w.close()
    silent.close()
    await silent.wait_closed()
    closed = ProtocolClient(address=HostPort("127.0.0.1", port), codec=codec, bank_code=BANK)
    with pytest.raises(Unavailable, match="cannot reach"):
        await closed.call(ArrearsQuery(account_id="A"), serial="Q2", timeout=SECOND)
    await closed.stop()


async def test_a_lost_connection_fails_pending_requests_and_the_next_call_redials(
    codec: MessageCodec, utility: MemoryUtility
) -> None:
    server = ProtocolServer(codec=codec, handler=collection_dispatcher(utility, bank_code=BANK))
    await server.start()
    client = CollectionClient(address=server.address, codec=codec, bank_code=BANK, timeout=SECOND)
    try:
        await client.query_arrears(ACCOUNTS[0])
        address = server.address
        await server.stop()
        with pytest.raises(Unavailable):
            await client.query_arrears(ACCOUNTS[0])
        server = ProtocolServer(
            codec=codec, listen=address, handler=collection_dispatcher(utility, bank_code=BANK)
        )
        await server.start()
        assert (await client.query_arrears(ACCOUNTS[0])).account_id == ACCOUNTS[0]
    finally:
        await client.stop()
        await server.stop()


class Slow(MemoryUtility):
    def __init__(self) -> None:
        super().__init__()
        self.running = 0
        self.most = 0

    async def query_arrears(self, header: Header, request: ArrearsQuery):  # type: ignore[no-untyped-def]
        self.running += 1
        self.most = max(self.most, self.running)
        await asyncio.sleep(0.05)
        self.running -= 1
        return await super().query_arrears(header, request)


@pytest.mark.parametrize("concurrency", [1, 8])
async def test_pipelined_requests_are_answered_in_order_or_concurrently(
    codec: MessageCodec, concurrency: int
) -> None:
    slow = Slow()
    server = ProtocolServer(
        codec=codec, handler=collection_dispatcher(slow, bank_code=BANK), concurrency=concurrency
    )
    async with (
        server,
        CollectionClient(
            address=server.address, codec=codec, bank_code=BANK, timeout=dt.timedelta(seconds=5)
        ) as client,
    ):
        replies = await asyncio.gather(*(client.query_arrears(a) for a in ACCOUNTS[:16]))
    assert [r.account_id for r in replies] == list(ACCOUNTS[:16])
    assert slow.most == concurrency


async def test_stopping_lets_a_request_in_progress_finish_and_closes_idle_connections(
    codec: MessageCodec,
) -> None:
    slow = Slow()
    server = ProtocolServer(codec=codec, handler=collection_dispatcher(slow, bank_code=BANK))
    await server.start()
    idle = CollectionClient(address=server.address, codec=codec, bank_code=BANK, timeout=SECOND)
    busy = CollectionClient(address=server.address, codec=codec, bank_code=BANK, timeout=SECOND)
    try:
        await idle.start()
        call = asyncio.create_task(busy.query_arrears(ACCOUNTS[0]))
        await eventually(lambda: slow.running, timeout=5, what="a request in progress")
        loop = asyncio.get_running_loop()
        started = loop.time()
        await server.stop(grace=dt.timedelta(seconds=5))
        assert loop.time() - started < 1.0  # nobody waited for the idle connection
        assert (await call).account_id == ACCOUNTS[0]
    finally:
        await idle.stop()
        await busy.stop()
