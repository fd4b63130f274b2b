"""DL/T 645-2007 frames, BCD values and stored records, against the FACTS §2 vectors."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from powerbus.adapters.dlt645 import (
    DI,
    Control,
    Corrupt,
    Frame,
    FrameDecoder,
    ProfileRecord,
    ReplyPattern,
    checksum,
    daily_freeze,
    decode_bcd,
    decode_profile_records,
    encode_address,
    encode_bcd,
    encode_profile_record,
    energy_rate,
)
from powerbus.adapters.dlt645.bcd import BcdError, decode_datetime, encode_datetime
from powerbus.adapters.dlt645.history import (
    decode_energy_block,
    decode_profile_request,
    encode_profile_request,
)
from powerbus.adapters.dlt645.identifiers import di_bytes

READ_ENERGY = bytes.fromhex("68 25 04 03 02 01 00 68 11 04 33 33 34 33 E1 16")
ENERGY_REPLY = bytes.fromhex("68 25 04 03 02 01 00 68 91 08 33 33 34 33 75 39 45 33 8B 16")
READ_VOLTAGE = bytes.fromhex("68 61 01 00 00 00 00 68 11 04 33 34 34 35 17 16")
VOLTAGE_REPLY = bytes.fromhex("68 61 01 00 00 00 00 68 91 06 33 34 34 35 34 43 10 16")


def test_read_energy_request_matches_the_published_frame() -> None:
    frame = Frame("000102030425", Control.READ, di_bytes(DI.ENERGY_FORWARD))
    assert frame.encode(preamble=0) == READ_ENERGY
    assert frame.encode()[:4] == b"\xfe" * 4


def test_energy_reply_decodes_to_1206_42_kwh() -> None:
    (reply,) = FrameDecoder().feed(ENERGY_REPLY)
    assert isinstance(reply, Frame)
    assert reply.address == "000102030425" and reply.control == Control.READ_REPLY
    assert reply.data[:4] == di_bytes(DI.ENERGY_FORWARD)
    assert decode_bcd(reply.data[4:], decimals=2) == 1206.42


def test_voltage_frames_match_the_published_ones() -> None:
    request = Frame("000000000161", Control.READ, di_bytes(DI.VOLTAGE_A))
    assert request.encode(preamble=0) == READ_VOLTAGE
    (reply,) = FrameDecoder().feed(VOLTAGE_REPLY)
    assert isinstance(reply, Frame)
    assert decode_bcd(reply.data[4:], decimals=1) == 100.1


def test_read_address_wildcard_checksum() -> None:
    frame = Frame("AAAAAAAAAAAA", Control.READ_ADDRESS)
    assert frame.encode(preamble=0).hex(" ") == "68 aa aa aa aa aa aa 68 13 00 df 16"


def test_the_wrong_published_checksum_is_rejected() -> None:
    # tjsmart.net prints C6 for this frame; the sum is 8E (FACTS §2)
    body = bytes.fromhex("68 11 11 11 11 11 11 68 11 04 33 33 34 33")
    assert checksum(body) != 0xC6
    events = list(FrameDecoder().feed(body + b"\xc6\x16"))
    assert [type(e) for e in events] == [Corrupt]
    good = list(FrameDecoder().feed(body + bytes((checksum(body), 0x16))))
    assert [type(e) for e in good] == [Frame]


def test_identifiers() -> None:
    assert energy_rate(0) == DI.ENERGY_FORWARD
    assert energy_rate(3, reverse=True) == 0x00020300
    assert daily_freeze(1, 1) == 0x05060101 and daily_freeze(0, 62) == 0x0506003E
    with pytest.raises(ValueError):
        daily_freeze(1, 63)
    assert encode_address("000102030425") == bytes.fromhex("250403020100")


@given(cents=st.integers(-7_999_999, 7_999_999))
def test_signed_bcd_round_trip(cents: int) -> None:
    raw = encode_bcd(cents / 100, size=4, decimals=2, signed=True)
    assert decode_bcd(raw, decimals=2, signed=True) == cents / 100


def _nibble_bcd(raw: bytes, decimals: int, signed: bool) -> float:
    """decode_bcd the slow, obvious way: digit by digit, high byte first."""
    high_first = bytearray(reversed(raw))
    negative = bool(signed and high_first and high_first[0] & 0x80)
    if negative:
        high_first[0] &= 0x7F
    value = 0
    for byte in high_first:
        if byte >> 4 > 9 or byte & 0x0F > 9:
            raise BcdError(raw.hex())
        value = value * 100 + (byte >> 4) * 10 + (byte & 0x0F)
    return -(value / 10**decimals) if negative else value / 10**decimals


@given(raw=st.binary(max_size=6), decimals=st.integers(0, 4), signed=st.booleans())
def test_bcd_decoding_agrees_with_digit_by_digit(raw: bytes, decimals: int, signed: bool) -> None:
    try:
        expected = _nibble_bcd(raw, decimals, signed)
    except BcdError:
        with pytest.raises(BcdError):
            decode_bcd(raw, decimals=decimals, signed=signed)
        if len(raw) % 4 == 0:
            with pytest.raises(BcdError):
                decode_energy_block(raw * 5)
        return
    assert decode_bcd(raw, decimals=decimals, signed=signed) == expected
    block = b"".join(encode_bcd(v, size=4, decimals=2) for v in (1.0, 2.5, 0.0, 9999.99, 7.0))
    assert decode_energy_block(block) == (1.0, 2.5, 0.0, 9999.99, 7.0)


def test_bcd_rejects_overflow_and_bad_digits() -> None:
    with pytest.raises(BcdError):
        encode_bcd(1_000_000.0, size=4, decimals=2)
    with pytest.raises(BcdError):
        decode_bcd(b"\x1a\x00", decimals=0)


def test_datetime_fields_low_byte_first() -> None:
    when = datetime(2026, 12, 4, 13, 5, 9)
    assert encode_datetime(when, "YMDhms") == bytes.fromhex("09 05 13 04 12 26")
    assert decode_datetime(encode_datetime(when, "YMDhms"), "YMDhms") == when
    assert encode_datetime(when, "YMDW")[0] == 5  # Friday


records = st.builds(
    ProfileRecord,
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)).map(
        lambda d: d.replace(second=0, microsecond=0)
    ),
    *(st.integers(0, 99_999_999).map(lambda v: v / 100) for _ in range(4)),
)


@given(st.lists(records, min_size=1, max_size=6))
def test_profile_records_round_trip(batch: list[ProfileRecord]) -> None:
    data = b"".join(encode_profile_record(r) for r in batch)
    assert len(data) + 4 <= 200 or len(batch) > 6
    assert decode_profile_records(data) == batch


def test_profile_record_sum_check_and_request() -> None:
    raw = bytearray(encode_profile_record(ProfileRecord(datetime(2026, 12, 3), 1.0, 2.0, 3.0, 4.0)))
    assert raw[:2] == b"\xa0\xa0" and raw[-1] == 0xE5 and raw[2] == len(raw) - 5
    raw[10] ^= 0x01
    with pytest.raises(BcdError):
        decode_profile_records(bytes(raw))
    start = datetime(2026, 12, 3, 0, 15)
    assert decode_profile_request(encode_profile_request(start, 6)) == (start, 6)


frames = st.builds(
    Frame,
    st.text("0123456789", min_size=12, max_size=12),
    st.sampled_from([Control.READ_REPLY, Control.READ_ERROR, Control.READ]),
    st.binary(max_size=60),
)


@given(garbage=st.binary(max_size=64), frame=frames, preamble=st.integers(0, 4))
def test_garbage_before_a_frame_is_skipped(garbage: bytes, frame: Frame, preamble: int) -> None:
    decoder = FrameDecoder()
    events = list(decoder.feed(garbage + frame.encode(preamble=preamble)))
    assert events and events[-1] == frame


@given(frame=frames, next_frame=frames, cut=st.integers(1, 200), chunk=st.integers(1, 17))
def test_a_cut_frame_does_not_hide_the_next(
    frame: Frame, next_frame: Frame, cut: int, chunk: int
) -> None:
    raw = frame.encode(preamble=0)
    stream = raw[: min(cut, len(raw) - 1)] + next_frame.encode()
    decoder = FrameDecoder()
    events = []
    for i in range(0, len(stream), chunk):
        events += decoder.feed(stream[i : i + chunk])
    assert [e for e in events if isinstance(e, Frame)][-1:] == [next_frame]
    assert not decoder.pending


@given(
    address=st.text("0123456789", min_size=12, max_size=12),
    di=st.binary(min_size=4, max_size=4),
    value=st.binary(max_size=40),
    preamble=st.integers(0, 4),
)
def test_an_expected_reply_that_came_whole_is_recognised_and_nothing_else(
    address: str, di: bytes, value: bytes, preamble: int
) -> None:
    pattern = ReplyPattern(Frame(address, Control.READ, di))
    reply = Frame(address, Control.READ_REPLY, di + value)
    wire = reply.encode(preamble=preamble)
    assert FrameDecoder().expected(wire, pattern) == reply == FrameDecoder().feed(wire)[0]
    # anything else is left to feed(): garbage before it, a bad checksum, another DI or
    # meter, an error reply, a cut reply, or bytes already buffered ahead of it
    other = "1" + address[1:] if address[0] != "1" else "2" + address[1:]
    bad_sum = wire[:-2] + bytes(((wire[-2] + 1) & 0xFF,)) + wire[-1:]
    for data in (
        b"\x00" + wire,
        bad_sum,
        Frame(address, Control.READ_REPLY, bytes(((di[0] + 1) & 0xFF,)) + di[1:] + value).encode(),
        Frame(other, Control.READ_REPLY, di + value).encode(),
        Frame(address, Control.READ_ERROR, b"\x02").encode(),
        wire[:-1],
    ):
        assert FrameDecoder().expected(data, pattern) is None, data.hex(" ")
    buffered = FrameDecoder()
    buffered.feed(b"\x68\x01")
    assert buffered.expected(wire, pattern) is None
