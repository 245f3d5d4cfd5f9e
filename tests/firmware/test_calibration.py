"""The board's calibration file (firmware/calibration.py): what `rig firmware calibrate` writes
is what the board reads back; anything else is no calibration; the bounds follow from the bridge's
sensitivity and keep RpHal's scale in small integers."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.sim.ads1220 import FULL_SCALE, PGA_GAIN
from firmware import calibration
from tests.firmware.conftest import FlashRoot
from tests.firmware.test_mpy_cross import compile_mpy


def test_what_calibrate_writes_the_board_reads_back(flash_root: FlashRoot) -> None:
    text = calibration.text(21471, 1221, 100.0, 558359, "2026-12-02T14:00:00Z")
    assert text == (
        "# The transducer's calibration, written by `rig firmware calibrate` (docs/firmware.md).\n"
        "ZERO_CODE = 21471\n"
        "GAIN_Q12 = 1221\n"
        "REFERENCE_MMHG = 100.0\n"
        "REFERENCE_CODE = 558359\n"
        "WRITTEN = '2026-12-02T14:00:00Z'\n"
    )
    flash_root.write(text)
    assert calibration.load() == (21471, 1221)


@pytest.mark.parametrize(
    "text",
    [
        None,  # no file
        "ZERO_CODE = 0\nGAIN_Q12 = \n",  # malformed
        "ZERO_CODE = 0\n",  # incomplete
        "ZERO_CODE = 0\nGAIN_Q12 = 1220.7\n",  # not an integer
        "ZERO_CODE = True\nGAIN_Q12 = 1221\n",
        f"ZERO_CODE = 0\nGAIN_Q12 = {calibration.GAIN_Q12_MIN - 1}\n",  # out of bounds
        f"ZERO_CODE = 0\nGAIN_Q12 = {calibration.GAIN_Q12_MAX + 1}\n",
        f"ZERO_CODE = {calibration.ZERO_CODE_LIMIT + 1}\nGAIN_Q12 = 1221\n",
        f"ZERO_CODE = {-calibration.ZERO_CODE_LIMIT - 1}\nGAIN_Q12 = 1221\n",
        "raise OSError('flash')\n",
    ],
    ids=[
        "missing",
        "malformed",
        "incomplete",
        "float",
        "bool",
        "gain-low",
        "gain-high",
        "zero-high",
        "zero-low",
        "raises",
    ],
)
def test_anything_else_is_no_calibration(flash_root: FlashRoot, text: str | None) -> None:
    if text is not None:
        flash_root.write(text)
    assert calibration.load() is None


def test_the_bounds_at_their_edges_are_a_calibration(flash_root: FlashRoot) -> None:
    for zero, gain in (
        (calibration.ZERO_CODE_LIMIT, calibration.GAIN_Q12_MIN),
        (-calibration.ZERO_CODE_LIMIT, calibration.GAIN_Q12_MAX),
    ):
        flash_root.write(calibration.text(zero, gain, 100.0, 0, "now"))
        assert calibration.load() == (zero, gain)


def test_the_bounds_are_the_bridge_sensitivity_plus_minus_ten_percent() -> None:
    def gain_q12(uv_per_v: float) -> float:
        codes_per_mmhg = uv_per_v * 1e-6 * PGA_GAIN * (FULL_SCALE + 1)
        return 100 * 16 * 4096 / codes_per_mmhg  # centi-mmHg per 16 codes, in Q12

    assert round(gain_q12(5.0)) == 1221
    assert int(gain_q12(5.5)) + 1 == calibration.GAIN_Q12_MIN
    assert int(gain_q12(4.5)) == calibration.GAIN_Q12_MAX
    assert int(30 * 5.5e-6 * PGA_GAIN * (FULL_SCALE + 1)) == calibration.ZERO_CODE_LIMIT


def test_the_scale_stays_in_small_integers_on_the_rp2040() -> None:
    """RpHal computes ((code - zero) >> 4) * gain for codes inside the rails: the product must
    stay below 2^30 (MicroPython's small integers on a 32-bit port), or it allocates."""
    worst = ((FULL_SCALE - 1 + calibration.ZERO_CODE_LIMIT) >> 4) * calibration.GAIN_Q12_MAX
    assert worst < 2**30
    worst_low = ((-(FULL_SCALE - 1) - calibration.ZERO_CODE_LIMIT) >> 4) * calibration.GAIN_Q12_MAX
    assert worst_low >= -(2**30)


def test_the_written_file_compiles_with_mpy_cross(tmp_path: Path) -> None:
    source = tmp_path / "calibration.py"
    source.write_text(calibration.text(-5, 1300, 200.0, 1073760, "2026-12-02T14:00:00Z"))
    result = compile_mpy(source, tmp_path)
    assert result.returncode == 0, result.stderr
