"""`rig firmware calibrate`: the transducer's zero and span, measured on the board and written
to its flash as `/calibration.py` (firmware/calibration.py; docs/firmware.md, bring-up).

While MicroPython's REPL answers (before `rig firmware flash` makes the board run the firmware):

1. The port is the board's and free, and the raw REPL answers (`firmware_flash.probe_repl`).
2. The firmware package goes to `/firmware/` (no `/main.py`) and is verified, so the codes are
   read through the firmware's own ADC set-up (`firmware.hal_rp2040.Ads1220`).
3. Line open to air: SAMPLES raw codes, averaged on the host. Then the engineer applies the
   reference pressure and confirms on stdin; SAMPLES codes again.
4. A noisy or drifting average, a zero offset beyond 30 mmHg or a gain outside the bounds the
   bridge's sensitivity gives is refused with its figures; nothing is written.
5. `/calibration.py` is written, its SHA-256 computed on the board must match, and the board's
   own reader (`calibration.load()`) must return the two numbers.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from firmware import calibration
from rig.cli.firmware_flash import (
    COPY_TIMEOUT_S,
    STEP_TIMEOUT_S,
    copy,
    flashed_file,
    mpremote,
    package_files,
    probe_repl,
    verify,
)

REFERENCE_MIN_MMHG = 50.0
REFERENCE_MAX_MMHG = 300.0
"""The transducer's range is -50..300 mmHg; a span under 50 mmHg magnifies the zero's noise."""
SAMPLES = 1000
"""1 s of conversions at 1000 SPS per average."""
NOMINAL_CODES_PER_MMHG = 5e-6 * 128 * 2**23
"""5 uV/V/mmHg through the ADS1220 at gain 128, ratiometric: 5368.7 (firmware/calibration.py)."""
NOISE_MAX_MMHG = 0.5
"""One conversion's standard deviation above this is not a transducer at rest: a line that
moves, a loose connection, a pump running. The average's own error is then 0.016 mmHg."""
DRIFT_MAX_MMHG = 0.2
"""The first half's average against the second's: a pressure that leaks away or settles. At the
noise limit the difference's own SD is 0.032 mmHg, so this is six of them."""
SAMPLE_CODE = "from firmware.hal_rp2040 import Ads1220\nfor c in Ads1220().codes({n}):\n print(c)\n"


class CalibrationError(RuntimeError):
    """The measurement was refused or abandoned; the message has the figures. Nothing written."""


@dataclass(frozen=True)
class Average:
    """SAMPLES raw codes at one pressure."""

    mean_code: float
    sd_mmhg: float
    drift_mmhg: float
    samples: int


@dataclass(frozen=True)
class Calibration:
    zero: Average
    reference: Average
    reference_mmhg: float
    zero_code: int
    gain_q12: int
    written: str

    def sensitivity_uv_per_v(self) -> float:
        return 5.0 * self.codes_per_mmhg() / NOMINAL_CODES_PER_MMHG

    def codes_per_mmhg(self) -> float:
        return 100 * 16 * 4096 / self.gain_q12

    def zero_offset_mmhg(self) -> float:
        return self.zero_code / NOMINAL_CODES_PER_MMHG

    def file_text(self) -> str:
        return calibration.text(
            self.zero_code,
            self.gain_q12,
            self.reference_mmhg,
            round(self.reference.mean_code),
            self.written,
        )


def check_reference(value: float) -> None:
    if not REFERENCE_MIN_MMHG <= value <= REFERENCE_MAX_MMHG:
        raise ValueError(
            f"--reference-mmhg: {value:g} is outside {REFERENCE_MIN_MMHG:g}..{REFERENCE_MAX_MMHG:g}"
            " mmHg (the pressure the calibrator applies to the transducer)"
        )


def average(codes: list[int], what: str) -> Average:
    """The codes' mean, refused if they are noisy or drift (figures in mmHg at the nominal
    sensitivity: the span is not known yet)."""
    half = len(codes) // 2
    result = Average(
        mean_code=statistics.fmean(codes),
        sd_mmhg=statistics.stdev(codes) / NOMINAL_CODES_PER_MMHG,
        drift_mmhg=(statistics.fmean(codes[half:]) - statistics.fmean(codes[:half]))
        / NOMINAL_CODES_PER_MMHG,
        samples=len(codes),
    )
    if result.sd_mmhg > NOISE_MAX_MMHG or abs(result.drift_mmhg) > DRIFT_MAX_MMHG:
        raise CalibrationError(
            f"{what}: too noisy to calibrate on: SD {result.sd_mmhg:.3f} mmHg (at most "
            f"{NOISE_MAX_MMHG:g}), drift {result.drift_mmhg:+.3f} mmHg over {len(codes)} samples "
            f"(at most ±{DRIFT_MAX_MMHG:g}): hold the pressure steady (pump off, line still, the "
            "calibrator settled) and run it again; nothing was written"
        )
    return result


def compute(zero: Average, reference: Average, reference_mmhg: float, written: str) -> Calibration:
    """ZERO_CODE and GAIN_Q12 such that RpHal's scale, ((code - ZERO_CODE) >> 4) * GAIN_Q12 >> 12
    centi-mmHg, reads 0 at the zero and `reference_mmhg` at the reference; refused outside the
    bounds (firmware/calibration.py)."""
    zero_code = round(zero.mean_code)
    span = reference.mean_code - zero_code
    if abs(zero_code) > calibration.ZERO_CODE_LIMIT:
        raise CalibrationError(
            f"zero: the transducer reads {zero_code} codes open to air ({zero_code / NOMINAL_CODES_PER_MMHG:+.1f} "
            f"mmHg at 5 uV/V/mmHg), beyond ±{calibration.ZERO_CODE_LIMIT} (30 mmHg): is the line "
            "open to air? Check the bridge's wiring; nothing was written"
        )
    gain_q12 = round(reference_mmhg * 100 * 16 * 4096 / span) if span > 0 else 0
    result = Calibration(zero, reference, reference_mmhg, zero_code, gain_q12, written)
    if not calibration.valid(zero_code, gain_q12):
        measured = span / reference_mmhg / NOMINAL_CODES_PER_MMHG * 5.0
        raise CalibrationError(
            f"span: {reference_mmhg:g} mmHg read {span:+.0f} codes above the zero, a bridge of "
            f"{measured:.2f} uV/V/mmHg (GAIN_Q12 {gain_q12}); the rig's transducer is 5 uV/V/mmHg "
            f"and this accepts 4.5..5.5 (GAIN_Q12 {calibration.GAIN_Q12_MIN}.."
            f"{calibration.GAIN_Q12_MAX}): was the reference applied, and is --reference-mmhg "
            "what the calibrator shows? Nothing was written"
        )
    return result


def read_codes(port: str, n: int) -> list[int]:
    """`n` raw ADC codes, read on the board through the firmware's ADS1220 set-up."""
    out = mpremote(port, ["exec", SAMPLE_CODE.format(n=n)], STEP_TIMEOUT_S)
    codes = [int(line) for line in out.split() if line.lstrip("-").isdigit()]
    if len(codes) != n:
        raise CalibrationError(f"{port}: expected {n} ADC codes from the board, got {out[:200]!r}")
    return codes


def write(port: str, result: Calibration) -> str:
    """Write /calibration.py, check its SHA-256 and that the board's own reader accepts it;
    the SHA-256 of what was written."""
    with tempfile.TemporaryDirectory(prefix="rig-calibration-") as tmp:
        local = Path(tmp) / "calibration.py"
        local.write_text(result.file_text())
        written = flashed_file(local, calibration.FILE)
        mpremote(port, ["fs", "cp", str(local), ":" + calibration.FILE], COPY_TIMEOUT_S)
        verify(port, [written])
    reader = "from firmware import calibration\nprint(calibration.load())\n"
    out = mpremote(port, ["exec", reader], STEP_TIMEOUT_S).strip()
    if out != f"({result.zero_code}, {result.gain_q12})":
        raise CalibrationError(
            f"{port}: the board reads {calibration.FILE} back as {out!r}, not "
            f"({result.zero_code}, {result.gain_q12}): calibrate again"
        )
    return written.sha256


def calibrate(
    port: str,
    baudrate: int,
    reference_mmhg: float,
    confirm: Callable[[str], str],
    say: Callable[[str], None],
    samples: int = SAMPLES,
) -> tuple[Calibration, str]:
    """Measure, check, write and verify; (the calibration, the file's SHA-256). `confirm(prompt)`
    returns the engineer's answer ("" to go on, EOFError if there is none)."""
    check_reference(reference_mmhg)
    probe_repl(port, baudrate)
    files = package_files()
    say(f"copying the firmware package ({len(files)} files, no /main.py) to {port}")
    copy(port, files)
    verify(port, files)
    say(f"zero: line open to air, averaging {samples} conversions")
    zero = average(read_codes(port, samples), "zero")
    try:
        answer = confirm(
            f"Close the line and apply {reference_mmhg:g} mmHg from the reference; when it is "
            "steady press Enter (q to abandon): "
        )
    except EOFError:
        raise CalibrationError("no answer on stdin: abandoned, nothing written") from None
    if answer.strip():
        raise CalibrationError(f"abandoned (answer {answer.strip()!r}), nothing written")
    say(f"reference: averaging {samples} conversions")
    reference = average(read_codes(port, samples), "reference")
    written = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = compute(zero, reference, reference_mmhg, written)
    say(f"writing {calibration.FILE}, verifying it on the board")
    return result, write(port, result)
