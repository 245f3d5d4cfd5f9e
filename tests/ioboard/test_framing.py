"""The board side's framing without CPython's C helpers: what the firmware will compute."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.ioboard import framing
from drivers.ioboard.framing import build_frame, crc16, crc16_bitwise


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
