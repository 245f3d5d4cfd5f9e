"""Arbitrary bytes into the Tic's decoders: only the codec's own error, never a crash."""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st

from drivers.tic.codec import (
    STATUS_READ_LENGTH,
    TicProtocolError,
    TicSerialDecoder,
    TicStatus,
    decode_usb,
)


@given(st.binary(max_size=64), st.booleans(), st.integers(0, 127))
def test_the_serial_decoder_takes_any_bytes(data: bytes, crc: bool, device_number: int) -> None:
    decoder = TicSerialDecoder(device_number=device_number, crc=crc)
    for request in decoder.feed(data):
        assert request.command & 0x80  # only whole, valid requests come out


@given(
    st.integers(0, 0xFF),
    st.integers(0, 0xFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
)
def test_decode_usb_raises_only_its_protocol_error(
    request_type: int, request: int, value: int, index: int, length: int
) -> None:
    with contextlib.suppress(TicProtocolError):
        decode_usb(request_type, request, value, index, length)


@given(st.binary(min_size=STATUS_READ_LENGTH, max_size=STATUS_READ_LENGTH))
def test_any_status_block_decodes_or_is_refused_with_its_bytes(block: bytes) -> None:
    try:
        TicStatus.decode(block)
    except TicProtocolError as exc:
        assert exc.data == block
