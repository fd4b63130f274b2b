"""Length framing: any split of the stream gives the same frames; bad headers and
truncated streams are typed errors that lose nothing received before them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from powerbus.adapters.bank import FrameDecoder, FramingError, TruncatedMessage, frame

bodies = st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=8)


@given(bodies=bodies, cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=10))
def test_frames_survive_any_split(bodies: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(frame(b) for b in bodies)
    points = sorted({c % (len(stream) + 1) for c in cuts})
    decoder = FrameDecoder()
    got = []
    for start, end in zip([0, *points], [*points, len(stream)], strict=True):
        decoder.feed(stream[start:end])
        while (body := decoder.next_frame()) is not None:
            got.append(body)
    decoder.end_of_stream()
    assert got == bodies


def test_a_bad_length_header_comes_after_the_frames_before_it() -> None:
    decoder = FrameDecoder()
    decoder.feed(frame(b"first") + b"00x005hello")
    assert decoder.next_frame() == b"first"
    with pytest.raises(FramingError) as caught:
        decoder.next_frame()
    assert caught.value.field == "length"
    assert caught.value.offset == 11
    assert "not 6 digits" in str(caught.value)


def test_zero_and_oversized_lengths_are_refused() -> None:
    for head in (b"000000", b"999999"):
        decoder = FrameDecoder(max_body=1000)
        decoder.feed(head + b"x")
        with pytest.raises(FramingError, match="outside"):
            decoder.next_frame()


def test_a_stream_ending_inside_a_frame_is_truncated() -> None:
    decoder = FrameDecoder()
    decoder.feed(frame(b"whole") + b"000010abc")
    assert decoder.next_frame() == b"whole"
    assert decoder.next_frame() is None
    with pytest.raises(TruncatedMessage, match="after 9 of 16 bytes"):
        decoder.end_of_stream()


def test_a_stream_ending_inside_the_header_is_truncated() -> None:
    decoder = FrameDecoder()
    decoder.feed(b"000")
    with pytest.raises(TruncatedMessage, match="length header"):
        decoder.end_of_stream()
