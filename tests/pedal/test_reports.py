"""Foot-pedal report formats byte for byte: VEC bitmask reports and boot-keyboard reports."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.pedal.reports import (
    Pedal,
    PedalReading,
    PedalReportError,
    decode_boot_keyboard,
    decode_vec,
    encode_boot_keyboard,
    encode_vec,
)

A, B, C, ONE = 0x04, 0x05, 0x06, 0x1E
KEY_MAP = {A: Pedal.LEFT, B: Pedal.MIDDLE, C: Pedal.RIGHT}


@pytest.mark.parametrize(
    ("report", "pressed"),
    [
        (b"\x00\x00", set()),
        (b"\x01\x00", {Pedal.LEFT}),
        (b"\x02\x00", {Pedal.MIDDLE}),
        (b"\x04\x00", {Pedal.RIGHT}),
        (b"\x05\x00", {Pedal.LEFT, Pedal.RIGHT}),
        (b"\x07\x00", {Pedal.LEFT, Pedal.MIDDLE, Pedal.RIGHT}),
    ],
)
def test_vec_reports_are_a_little_endian_bitmask(report: bytes, pressed: set[Pedal]) -> None:
    assert decode_vec(report) == PedalReading(frozenset(pressed))


@pytest.mark.parametrize("report", [b"\x08\x00", b"\x00\x01", b"\x01", b"\x01\x00\x00"])
def test_vec_reports_with_unknown_bits_or_lengths_are_refused(report: bytes) -> None:
    with pytest.raises(PedalReportError) as caught:
        decode_vec(report)
    assert caught.value.data == report


@given(st.frozensets(st.sampled_from(list(Pedal))))
def test_vec_encoding_round_trips(pressed: frozenset[Pedal]) -> None:
    assert decode_vec(encode_vec(pressed)).pressed == pressed


@pytest.mark.parametrize(
    ("report", "pressed", "unknown"),
    [
        (b"\x00\x00\x00\x00\x00\x00\x00\x00", set(), ()),
        (b"\x00\x00\x04\x00\x00\x00\x00\x00", {Pedal.LEFT}, ()),
        (b"\x00\x00\x06\x04\x00\x00\x00\x00", {Pedal.LEFT, Pedal.RIGHT}, ()),
        (b"\x02\x00\x05\x00\x00\x00\x00\x00", {Pedal.MIDDLE}, ()),  # shift held: ignored
        (b"\x00\x00\x1e\x05\x00\x00\x00\x00", {Pedal.MIDDLE}, (ONE,)),
    ],
)
def test_boot_keyboard_reports_map_keys_to_pedals(
    report: bytes, pressed: set[Pedal], unknown: tuple[int, ...]
) -> None:
    assert decode_boot_keyboard(report, KEY_MAP) == PedalReading(frozenset(pressed), unknown)


def test_boot_keyboard_rollover_and_wrong_lengths_are_refused() -> None:
    with pytest.raises(PedalReportError, match="rollover"):
        decode_boot_keyboard(b"\x00\x00\x01\x01\x01\x01\x01\x01", KEY_MAP)
    with pytest.raises(PedalReportError, match="expected 8"):
        decode_boot_keyboard(b"\x00\x00\x04\x00\x00\x00\x00", KEY_MAP)


def test_a_custom_key_map_names_the_pedals() -> None:
    f5 = 0x3E
    assert decode_boot_keyboard(encode_boot_keyboard((f5,)), {f5: Pedal.RIGHT}).pressed == {
        Pedal.RIGHT
    }


def test_boot_keyboard_encoding_is_modifiers_reserved_then_six_keys() -> None:
    assert encode_boot_keyboard((A, C)) == b"\x00\x00\x04\x06\x00\x00\x00\x00"
    assert encode_boot_keyboard(tuple(range(4, 11))) == b"\x00\x00" + b"\x01" * 6


@given(st.binary(max_size=12))
def test_any_bytes_decode_or_are_refused_with_their_bytes(report: bytes) -> None:
    for decode in (decode_vec, lambda r: decode_boot_keyboard(r, KEY_MAP)):
        try:
            decode(report)
        except PedalReportError as exc:
            assert exc.data == report
