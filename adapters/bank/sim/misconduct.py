"""The simulated bank's bad behaviour on the wire: replies it never reads, and broken
messages (:class:`~.faults.Malformed`) sent beside its real traffic.

>>> # answered = await send_malformed(client, Malformed.BAD_MAC, account="31...",
>>> #                                 serial="B1", connect=node, timeout=timeout)
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt

from powerbus.adapters.bank.client import CollectionClient
from powerbus.adapters.bank.protocol.codec import MessageCodec
from powerbus.adapters.bank.protocol.mac import KeyRing
from powerbus.adapters.bank.protocol.messages import (
    ArrearsQuery,
    Header,
    Message,
    MsgType,
    PaymentRequest,
    RespCode,
    TxnCode,
)
from powerbus.adapters.bank.sim.faults import Malformed, corrupt
from powerbus.bus.kernel.addresses import HostPort
from powerbus.bus.kernel.errors import DeadlineExceeded, Unavailable

__all__ = ["send_malformed", "send_unread"]


def _request(
    codec: MessageCodec,
    bank_code: str,
    serial: str,
    body: ArrearsQuery | PaymentRequest,
    sent_at: dt.datetime | None = None,
) -> bytes:
    header = Header(
        txn_code=body.TXN_CODE,
        msg_type=MsgType.REQUEST,
        bank_code=bank_code,
        serial=serial,
        sent_at=sent_at or dt.datetime.now(),
    )
    return codec.encode(Message(header, body))


async def send_unread(
    client: CollectionClient,
    codec: MessageCodec,
    *,
    serial: str,
    body: PaymentRequest,
    sent_at: dt.datetime,
) -> None:
    """Send a payment and never read its reply: to the bank this is a timeout, so it
    raises ``DeadlineExceeded`` once the request is out."""
    data = _request(codec, client.connection.bank_code, serial, body, sent_at)
    await client.connection.send_raw(data, timeout=client.timeout)
    raise DeadlineExceeded(f"reply to {serial} lost (simulated)")


async def send_malformed(
    client: CollectionClient,
    codec: MessageCodec,
    keys: KeyRing,
    kind: Malformed,
    *,
    account: str,
    serial: str,
    connect: HostPort,
) -> bool:
    """Send one broken arrears query; True when the peer answered it with a MAC or format
    error. Frame-intact kinds go on the client's connection (which must survive them),
    stream-breaking kinds on a connection of their own, as a broken peer's would."""
    bank_code = client.connection.bank_code
    wire = _request(codec, bank_code, serial, ArrearsQuery(account_id=account))
    bad = corrupt(wire, kind, keys=keys, bank_code=bank_code)
    if kind in (Malformed.BAD_MAC, Malformed.GBK_GARBAGE):
        reply = await client.connection.exchange_raw(
            bad, key=(TxnCode.ARREARS_QUERY, serial), timeout=client.timeout
        )
        return reply.header.resp_code in (RespCode.MAC_ERROR, RespCode.FORMAT_ERROR)
    await _send_alone(bad, connect, client.timeout.total_seconds())
    return False


async def _send_alone(data: bytes, target: HostPort, timeout: float) -> None:
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(target.host, target.port), timeout
        )
    except (OSError, asyncio.TimeoutError) as exc:
        raise Unavailable(f"cannot reach {target}: {exc!r}") from None
    try:
        writer.write(data)
        await asyncio.wait_for(writer.drain(), timeout)
    finally:
        writer.close()
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), timeout)
