"""The shared framing without CPython's C helpers: what the firmware computes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware import framing
from firmware.framing import build_frame, crc16, crc16_bitwise, crc16_range, finish_frame


def test_bitwise_crc_matches_the_check_value_of_crc16_ccitt_false() -> None:
    assert crc16_bitwise(b"123456789") == 0x29B1
    assert crc16_bitwise(b"") == 0xFFFF


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_bitwise_crc_equals_binascii_crc_hqx(data: bytes) -> None:
    assert crc16_bitwise(data) == crc16(data)


def test_frames_are_the_same_without_binascii_crc_hqx(monkeypatch: pytest.MonkeyPatch) -> None:
    """MicroPython's binascii has no crc_hqx: the bitwise CRC must build the same bytes."""
    with_crc_hqx = build_frame(3, b"\x04\xf4\x01")
    monkeypatch.setattr(framing, "_HAVE_CRC_HQX", False)
    assert build_frame(3, b"\x04\xf4\x01") == with_crc_hqx


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.binary(max_size=8))
def test_table_crc_over_a_range_equals_the_bitwise_crc(data: bytes, pad: bytes) -> None:
    buf = pad + data + pad
    assert crc16_range(buf, len(pad), len(pad) + len(data)) == crc16_bitwise(data)


@given(st.integers(0, 15), st.binary(max_size=59))
def test_a_frame_finished_in_place_is_the_frame_built_by_the_host(seq: int, payload: bytes) -> None:
    buf = bytearray(64)
    buf[2 : 2 + len(payload)] = payload
    length = finish_frame(buf, seq, len(payload))
    assert bytes(buf[:length]) == build_frame(seq, payload)
