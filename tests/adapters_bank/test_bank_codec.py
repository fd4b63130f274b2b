"""The message codec: every body round-trips; every malformed class is a typed error
naming the field and where it is."""

from __future__ import annotations

import datetime as dt

import pytest
from bank_support import BANK
from hypothesis import given
from hypothesis import strategies as st

from powerbus.adapters.bank import (
    ArrearsQuery,
    ArrearsReply,
    EncodingError,
    Header,
    KeyRing,
    MacMismatch,
    Message,
    MessageCodec,
    MsgType,
    PaymentChannel,
    PaymentReply,
    PaymentRequest,
    ProtocolError,
    RespCode,
    ReversalReply,
    ReversalRequest,
    ReverseOutcome,
    StatementChunk,
    StatementRequest,
    StatusQuery,
    StatusReply,
    TruncatedMessage,
    TxnState,
)
from powerbus.adapters.bank.sim.faults import Malformed, corrupt
from powerbus.bus.kernel.errors import InvalidArgument

ascii_id = st.text(alphabet="0123456789ABCDEFXYZ", min_size=1, max_size=20)
fen = st.integers(min_value=0, max_value=10**14 - 1)
# GBK text that fits its field (up to 10 two-byte characters); fixed-width fields are
# space-padded, so trailing spaces do not survive by design.
gbk_text = st.text(alphabet="张王李赵刘陈杨黄*电费冲正 abc", max_size=10).map(str.rstrip)
day = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31))

bodies = st.one_of(
    st.builds(ArrearsQuery, account_id=ascii_id),
    st.builds(
        ArrearsReply,
        account_id=ascii_id,
        customer_name=gbk_text,
        total_due=fen,
        principal=fen,
        late_fee=fen,
        credit_balance=fen,
        bill_count=st.integers(0, 999),
    ),
    st.builds(
        PaymentRequest,
        account_id=ascii_id,
        amount=fen,
        channel=st.sampled_from(PaymentChannel),
        settlement_date=day,
    ),
    st.builds(
        PaymentReply,
        account_id=ascii_id,
        amount=fen,
        payment_id=ascii_id,
        remaining_due=fen,
        duplicate=st.booleans(),
    ),
    st.builds(ReversalRequest, original_serial=ascii_id, amount=fen, reason=gbk_text),
    st.builds(
        ReversalReply,
        original_serial=ascii_id,
        outcome=st.sampled_from(ReverseOutcome),
        payment_id=ascii_id,
        duplicate=st.booleans(),
    ),
    st.builds(StatusQuery, target_serial=ascii_id, txn_date=day),
    st.builds(
        StatusReply,
        target_serial=ascii_id,
        state=st.sampled_from(TxnState),
        account_id=ascii_id,
        amount=fen,
    ),
    st.builds(StatementRequest, settlement_date=day, offset=st.integers(0, 10**9)),
    st.builds(
        StatementChunk,
        settlement_date=day,
        file_name=ascii_id,
        file_size=st.integers(0, 10**9),
        sha256=st.just("ab" * 32),
        offset=st.integers(0, 10**9),
        data=st.binary(max_size=500),
    ),
)


def header_for(body: object, *, serial: str = "S0001", msg: str = "") -> Header:
    reply = body.IS_REPLY
    return Header(
        txn_code=body.TXN_CODE,
        msg_type=MsgType.REPLY if reply else MsgType.REQUEST,
        bank_code=BANK,
        serial=serial,
        sent_at=dt.datetime(2026, 12, 4, 23, 59, 59),
        resp_msg=msg,
    )


@given(body=bodies, serial=ascii_id, msg=gbk_text)
def test_every_message_round_trips(body: object, serial: str, msg: str) -> None:
    codec = MessageCodec(KeyRing({BANK: b"k"}))
    message = Message(header_for(body, serial=serial, msg=msg), body)  # type: ignore[arg-type]
    wire = codec.encode(message)
    assert int(wire[:6]) == len(wire) - 6
    assert codec.decode(wire[6:]) == message


def test_an_error_reply_carries_no_body(codec: MessageCodec) -> None:
    head = Header(
        txn_code=PaymentRequest.TXN_CODE,
        msg_type=MsgType.REPLY,
        bank_code=BANK,
        serial="S1",
        sent_at=dt.datetime(2026, 12, 4),
        resp_code=RespCode.REFUSED,
        resp_msg="已冲正",
    )
    decoded = codec.decode(codec.encode(Message(head, None))[6:])
    assert decoded.body is None and not decoded.ok and decoded.header.resp_msg == "已冲正"


def _wire(codec: MessageCodec) -> bytes:
    body = PaymentRequest(
        account_id="3100000001",
        amount=12345,
        channel=PaymentChannel.BANK_COUNTER,
        settlement_date=dt.date(2026, 12, 4),
    )
    return codec.encode(Message(header_for(body), body))


def test_a_bad_mac_names_the_mac(codec: MessageCodec, keys: KeyRing) -> None:
    bad = corrupt(_wire(codec), Malformed.BAD_MAC, keys=keys, bank_code=BANK)
    with pytest.raises(MacMismatch) as caught:
        codec.decode(bad[6:])
    assert caught.value.field == "mac" and "does not verify for bank '0102'" in str(caught.value)


def test_another_banks_key_does_not_verify(codec: MessageCodec) -> None:
    other = MessageCodec(KeyRing({BANK: b"someone else"}))
    with pytest.raises(MacMismatch):
        codec.decode(other.encode(Message(*_message_parts()))[6:])


def _message_parts() -> tuple[Header, ArrearsQuery]:
    body = ArrearsQuery(account_id="3100000001")
    return header_for(body), body


def test_gbk_garbage_names_the_field_and_offset(codec: MessageCodec, keys: KeyRing) -> None:
    bad = corrupt(_wire(codec), Malformed.GBK_GARBAGE, keys=keys, bank_code=BANK)
    with pytest.raises(EncodingError) as caught:
        codec.decode(bad[6:])
    assert caught.value.field == "resp_msg"
    assert caught.value.offset == 47  # the header's GBK text starts at byte 47


def test_a_truncated_message_names_what_is_missing(codec: MessageCodec, keys: KeyRing) -> None:
    wire = _wire(codec)
    with pytest.raises(TruncatedMessage, match="header"):
        codec.decode(wire[6:60])
    # Well signed but short of the body's last field.
    unsigned = wire[6:-32][:-5]
    short = unsigned + keys.sign(BANK, unsigned)
    with pytest.raises(TruncatedMessage) as caught:
        codec.decode(short)
    assert caught.value.field == "settlement_date"


def test_a_non_digit_amount_names_the_field(codec: MessageCodec, keys: KeyRing) -> None:
    unsigned = bytearray(_wire(codec)[6:-32])
    unsigned[87 + 20 + 5] = ord("x")  # inside the amount, after the account id
    signed = bytes(unsigned) + keys.sign(BANK, bytes(unsigned))
    with pytest.raises(ProtocolError) as caught:
        codec.decode(signed)
    assert caught.value.field == "amount" and caught.value.offset == 107


def test_an_unknown_transaction_code_is_named(codec: MessageCodec, keys: KeyRing) -> None:
    unsigned = b"7777" + _wire(codec)[10:-32]
    with pytest.raises(ProtocolError) as caught:
        codec.decode(unsigned + keys.sign(BANK, unsigned))
    assert caught.value.field == "txn_code" and "unknown TxnCode '7777'" in str(caught.value)


def test_values_that_do_not_fit_are_refused_when_encoding(codec: MessageCodec) -> None:
    body = ArrearsQuery(account_id="X" * 21)
    with pytest.raises(InvalidArgument, match="account_id"):
        codec.encode(Message(header_for(body), body))
    body2 = ReversalRequest(original_serial="S", amount=1, reason="冲" * 16)
    with pytest.raises(InvalidArgument, match="reason: 32 bytes do not fit in 30"):
        codec.encode(Message(header_for(body2), body2))
