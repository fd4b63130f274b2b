"""Messages to bytes and back: header, body fields, optional data, MAC, in one frame.

Decoding checks in the order an attacker or a broken peer would be caught soonest: the
frame is long enough, the ASCII header parses, the MAC verifies under the sending bank's
key, and only then are GBK text and the body decoded. Each failure is a typed
:class:`~powerbus.adapters.bank.errors.ProtocolError` naming the field and byte offset.

>>> import datetime as dt
>>> from powerbus.adapters.bank.protocol.messages import ArrearsQuery
>>> codec = MessageCodec(KeyRing({"0102": b"k"}))
>>> header = Header(txn_code=TxnCode.ARREARS_QUERY, msg_type=MsgType.REQUEST,
...                 bank_code="0102", serial="S1", sent_at=dt.datetime(2026, 12, 4, 9, 30))
>>> wire = codec.encode(Message(header, ArrearsQuery(account_id="3100012345")))
>>> wire[:6], codec.decode(wire[6:]).body
(b'000139', ArrearsQuery(account_id='3100012345'))
"""

from __future__ import annotations

import dataclasses
from typing import Any

from powerbus.adapters.bank.errors import MacMismatch, ProtocolError, TruncatedMessage
from powerbus.adapters.bank.protocol.fields import (
    Field,
    Kind,
    decode_fields,
    encode_fields,
    layout_width,
)
from powerbus.adapters.bank.protocol.framing import frame
from powerbus.adapters.bank.protocol.mac import MAC_SIZE, KeyRing
from powerbus.adapters.bank.protocol.messages import (
    HEADER_LAYOUT,
    Body,
    Header,
    Message,
    MsgType,
    RespCode,
    StatementChunk,
    TxnCode,
    body_type,
)

__all__ = ["HEADER_SIZE", "MessageCodec"]

HEADER_SIZE = layout_width(HEADER_LAYOUT)
_DATA_LEN = Field("data_len", 6, Kind.NUMBER)
# The header's GBK field is decoded after the MAC check, the ASCII ones before it.
_ASCII_HEADER = HEADER_LAYOUT[:-1]
_ASCII_HEADER_SIZE = layout_width(_ASCII_HEADER)


class MessageCodec:
    """Encodes and decodes messages, signing and verifying with ``keys``."""

    def __init__(self, keys: KeyRing) -> None:
        self._keys = keys

    def encode(self, message: Message) -> bytes:
        """The framed bytes of ``message`` (length header included)."""
        h = message.header
        parts = [encode_fields(HEADER_LAYOUT, _fields_of(h))]
        body = message.body
        if body is not None:
            if body.TXN_CODE is not h.txn_code or (h.msg_type is MsgType.REPLY) != body.IS_REPLY:
                raise ProtocolError("body", -1, f"{type(body).__name__} under {h.txn_code.name}")
            parts.append(encode_fields(body.LAYOUT, _fields_of(body)))
            if isinstance(body, StatementChunk):
                parts += [encode_fields((_DATA_LEN,), {"data_len": len(body.data)}), body.data]
        unsigned = b"".join(parts)
        return frame(unsigned + self._keys.sign(h.bank_code, unsigned))

    def peek_header(self, data: bytes) -> Header | None:
        """The header of a frame body if its ASCII part parses (MAC unchecked), else None;
        used to address an error reply to the request that caused it."""
        try:
            values = decode_fields(_ASCII_HEADER, data[:_ASCII_HEADER_SIZE], base=0)
        except ProtocolError:
            return None
        return Header(**values, resp_msg="")

    def decode(self, data: bytes) -> Message:
        """The message in a frame body (without its length header)."""
        if len(data) < HEADER_SIZE + MAC_SIZE:
            raise TruncatedMessage(
                "header", len(data), f"{len(data)} bytes; at least {HEADER_SIZE + MAC_SIZE} needed"
            )
        values = decode_fields(_ASCII_HEADER, data[:_ASCII_HEADER_SIZE], base=0)
        signed, mac = data[:-MAC_SIZE], data[-MAC_SIZE:]
        if not self._keys.verify(str(values["bank_code"]), signed, mac):
            raise MacMismatch(
                "mac", len(signed), f"does not verify for bank {values['bank_code']!r}"
            )
        values.update(
            decode_fields(
                HEADER_LAYOUT[-1:], data[_ASCII_HEADER_SIZE:HEADER_SIZE], base=_ASCII_HEADER_SIZE
            )
        )
        header = Header(**values)
        rest = signed[HEADER_SIZE:]
        if header.msg_type is MsgType.REPLY and header.resp_code is not RespCode.OK:
            return Message(header, None)
        return Message(header, _decode_body(header.txn_code, header.msg_type, rest))


def _decode_body(txn_code: TxnCode, msg_type: MsgType, rest: bytes) -> Body:
    cls = body_type(txn_code, msg_type)
    width = layout_width(cls.LAYOUT)
    kwargs: dict[str, Any] = decode_fields(cls.LAYOUT, rest[:width], base=HEADER_SIZE)
    tail = rest[width:]
    if cls is StatementChunk:
        length = decode_fields((_DATA_LEN,), tail[:6], base=HEADER_SIZE + width)["data_len"]
        assert isinstance(length, int)
        if len(tail) - 6 != length:
            raise TruncatedMessage(
                "data", HEADER_SIZE + width + 6, f"{len(tail) - 6} of {length} bytes"
            )
        kwargs["data"] = tail[6:]
    elif tail:
        raise ProtocolError("body", HEADER_SIZE + width, f"{len(tail)} bytes after the last field")
    return cls(**kwargs)


def _fields_of(record: Any) -> dict[str, object]:
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
