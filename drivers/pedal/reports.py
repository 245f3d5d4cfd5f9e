"""Foot-pedal HID reports, bytes in and pressed pedals out; no I/O.

Two formats (docs/protocols.md, "USB HID foot pedals"; sources: rgerganov/footswitch,
fenimore/scribouillage, georgemck/vec-footpedal-hid-linux):

- VEC Infinity IN-USB-2 (05f3:00ff): a 2-byte little-endian bitmask, 1 left, 2 middle, 4 right,
  OR-ed for combinations, 0 when released. Other bits are refused (not a pedal we know).
- PCsensor / iKKEGOL switches enumerate as HID boot keyboards: each pedal is programmed to send a
  key, and the 8-byte boot-keyboard report (HID 1.11, appendix B.1: modifiers, reserved, six
  key codes) lists the keys down. `key_map` says which key is which pedal; other keys are
  reported as unknown, not as pedals. A report of "phantom" key codes (ErrorRollOver, 0x01) is
  refused: the keyboard cannot say which keys are down.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Pedal(StrEnum):
    LEFT = "left"
    MIDDLE = "middle"
    RIGHT = "right"


class PedalFormat(StrEnum):
    VEC = "vec"
    PCSENSOR = "pcsensor"


VEC_VENDOR_ID = 0x05F3
VEC_PRODUCT_ID = 0x00FF
VEC_REPORT_LENGTH = 2
VEC_BITS: dict[Pedal, int] = {Pedal.LEFT: 0x1, Pedal.MIDDLE: 0x2, Pedal.RIGHT: 0x4}

PCSENSOR_IDS: tuple[tuple[int, int], ...] = (
    (0x0C45, 0x7403),
    (0x0C45, 0x7404),
    (0x413D, 0x2107),
    (0x1A86, 0xE026),
    (0x3553, 0xB001),
)
BOOT_KEYBOARD_REPORT_LENGTH = 8
BOOT_KEYBOARD_KEY_SLOTS = 6
KEY_ERROR_ROLLOVER = 0x01
KEY_A, KEY_B, KEY_C = 0x04, 0x05, 0x06
"""HID usage ids (keyboard page) of the letters a, b, c."""
DEFAULT_KEY_MAP: dict[int, Pedal] = {KEY_A: Pedal.LEFT, KEY_B: Pedal.MIDDLE, KEY_C: Pedal.RIGHT}
"""What a three-pedal PCsensor switch sends out of the box (a, b, c); configurable."""


class PedalReportError(ValueError):
    """A report this codec cannot read; `data` holds its bytes."""

    def __init__(self, message: str, data: bytes) -> None:
        super().__init__(f"{message}: {data.hex(' ')}")
        self.data = data


@dataclass(frozen=True)
class PedalReading:
    pressed: frozenset[Pedal]
    unknown_keys: tuple[int, ...] = ()
    """Keys down that no pedal is mapped to (PCsensor only)."""


def decode_vec(report: bytes) -> PedalReading:
    if len(report) != VEC_REPORT_LENGTH:
        raise PedalReportError(f"VEC report of {len(report)} bytes, expected 2", report)
    mask = int.from_bytes(report, "little")
    known = sum(VEC_BITS.values())
    if mask & ~known:
        raise PedalReportError(f"VEC report with unknown bits {mask & ~known:#06x}", report)
    return PedalReading(frozenset(p for p, bit in VEC_BITS.items() if mask & bit))


def encode_vec(pressed: frozenset[Pedal]) -> bytes:
    return sum(VEC_BITS[p] for p in pressed).to_bytes(VEC_REPORT_LENGTH, "little")


def decode_boot_keyboard(report: bytes, key_map: dict[int, Pedal]) -> PedalReading:
    if len(report) != BOOT_KEYBOARD_REPORT_LENGTH:
        raise PedalReportError(f"keyboard report of {len(report)} bytes, expected 8", report)
    keys = [k for k in report[2:] if k != 0]
    if KEY_ERROR_ROLLOVER in keys:
        raise PedalReportError("keyboard report of rollover errors (keys unknown)", report)
    pressed = frozenset(key_map[k] for k in keys if k in key_map)
    unknown = tuple(k for k in keys if k not in key_map)
    return PedalReading(pressed, unknown)


def encode_boot_keyboard(keys: tuple[int, ...], modifiers: int = 0) -> bytes:
    if len(keys) > BOOT_KEYBOARD_KEY_SLOTS:
        keys = (KEY_ERROR_ROLLOVER,) * BOOT_KEYBOARD_KEY_SLOTS  # what a keyboard sends then
    return bytes((modifiers, 0, *keys)) + bytes(BOOT_KEYBOARD_KEY_SLOTS - len(keys))


def decode_report(
    pedal_format: PedalFormat, report: bytes, key_map: dict[int, Pedal] | None = None
) -> PedalReading:
    if pedal_format is PedalFormat.VEC:
        return decode_vec(report)
    return decode_boot_keyboard(report, DEFAULT_KEY_MAP if key_map is None else key_map)
