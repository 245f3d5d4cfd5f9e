"""`rig firmware calibrate` end to end: the real mpremote against the emulated Pico, whose ADS1220
reads a bridge at the pressure the test applies (drivers/sim/micropython_board.py). The numbers
it writes are then checked where they act: RpHal's scale on the fake ADC (fake_machine.py), fed
the same bridge's codes."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.ioboard.driver import IoBoard
from drivers.sim.ads1220 import Bridge
from firmware import calibration
from rig.cli.main import main
from tests.firmware.conftest import FlashRoot
from tests.firmware.fake_machine import SPI, Pin, fake_micropython
from tests.firmware.test_flash import EmulatedPico


class Bench:
    """The emulated Pico with a pressure the test sets, and the engineer at stdin who applies
    the reference when asked and then presses Enter."""

    def __init__(self, tmp_path: Path, *extra: str) -> None:
        self.pressure_file = tmp_path / "pressure"
        self.set_pressure(0.0)
        self.pico = EmulatedPico(
            tmp_path / "flash", "--pressure-file", str(self.pressure_file), *extra
        )
        self.prompts = 0

    def set_pressure(self, mmhg: float) -> None:
        self.pressure_file.write_text(repr(mmhg))

    def engineer(self, applies_mmhg: float, answer: str = "\n") -> object:
        """sys.stdin for `calibrate`: at its prompt, the reference goes on, then the answer."""
        bench = self

        class Stdin:
            def readline(self) -> str:
                bench.prompts += 1
                bench.set_pressure(applies_mmhg)
                return answer

        return Stdin()

    def calibration_file(self) -> Path:
        return self.pico.flash / "calibration.py"


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    bench = Bench(tmp_path)
    yield bench
    bench.pico.stop()


def calibrate(
    bench: Bench,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    applies_mmhg: float,
    *args: str,
    answer: str = "\n",
) -> tuple[int, str]:
    monkeypatch.setattr("sys.stdin", bench.engineer(applies_mmhg, answer))
    code = main(["firmware", "calibrate", "--port", bench.pico.port, *args])
    return code, capsys.readouterr().out


def reading_mmhg(zero_code: int, gain_q12: int, code: int) -> float:
    """What the board reads for an ADC code: RpHal itself on the fake ADC."""
    with fake_micropython(), open(os.devnull, "rb") as rx, open(os.devnull, "wb") as tx:
        from firmware.hal_rp2040 import PIN_DRDY, RpHal

        hal = RpHal(zero_code, gain_q12, host_in=rx, host_out=tx)
        assert SPI.last is not None
        SPI.last.code = code
        Pin.pins[PIN_DRDY].level = 0
        return hal.read_pressure_cmmhg(0) / 100


def test_calibrate_then_the_board_reads_the_reference_points(
    bench: Bench,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    flash_root: FlashRoot,
) -> None:
    code, out = calibrate(bench, capsys, monkeypatch, 100.0, "--reference-mmhg", "100", "--json")
    assert code == 0, out
    assert bench.prompts == 1
    report = json.loads(out)
    assert report["file"] == "/calibration.py" and report["reference_mmhg"] == 100.0
    assert report["averages"]["zero"]["samples"] == 1000
    assert abs(report["zero_offset_mmhg"] - 4.0) < 0.01  # the emulated bridge's offset
    assert abs(report["sensitivity_uv_per_v"] - 5.0) < 0.005

    # the file on the board is what the board's reader takes, and what main() boots with
    text = bench.calibration_file().read_text()
    assert f"ZERO_CODE = {report['zero_code']}\n" in text
    assert f"GAIN_Q12 = {report['gain_q12']}\n" in text
    assert "REFERENCE_MMHG = 100.0\n" in text and f"WRITTEN = '{report['written']}'" in text
    flash_root.write(text)
    assert calibration.load() == (report["zero_code"], report["gain_q12"])

    # zero 0 +- 0.5 mmHg, the reference points within 1 mmHg or 1 %, on RpHal's scale
    bridge = Bridge()  # the emulator's transducer, without its noise
    scale = (report["zero_code"], report["gain_q12"])
    assert abs(reading_mmhg(*scale, bridge.code(0.0, noisy=False))) <= 0.5
    for mmhg in (50.0, 100.0, 200.0):
        error = reading_mmhg(*scale, bridge.code(mmhg, noisy=False)) - mmhg
        assert abs(error) <= max(1.0, mmhg / 100), (mmhg, error)


def test_flashing_keeps_the_calibration(
    bench: Bench, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out = calibrate(bench, capsys, monkeypatch, 150.0, "--reference-mmhg", "150")
    assert code == 0, out
    assert "calibrated and verified" in out and "GAIN_Q12 1221" in out
    before = bench.calibration_file().read_bytes()
    assert main(["firmware", "flash", "--port", bench.pico.port]) == 0
    assert bench.calibration_file().read_bytes() == before
    assert (bench.pico.flash / "main.py").is_file()


@pytest.mark.parametrize("value", ["49.9", "300.5", "-100", "nan"])
def test_a_reference_out_of_range_is_refused_before_anything_is_sent(
    bench: Bench,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    value: str,
) -> None:
    code, out = calibrate(bench, capsys, monkeypatch, 100.0, "--reference-mmhg", value)
    assert code == 2
    assert f"--reference-mmhg: {float(value):g} is outside 50..300 mmHg" in out
    assert bench.prompts == 0 and not (bench.pico.flash / "firmware").exists()


@pytest.mark.hazard("H13")
def test_noisy_readings_are_refused_with_their_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = Bench(tmp_path, "--noise-mmhg", "2")
    try:
        code, out = calibrate(bench, capsys, monkeypatch, 100.0, "--reference-mmhg", "100")
    finally:
        bench.pico.stop()
    assert code == 1
    assert "zero: too noisy to calibrate on: SD 2.0" in out and "(at most 0.5)" in out
    assert bench.prompts == 0  # refused at the zero, before the reference was asked for
    assert not bench.calibration_file().exists()


@pytest.mark.hazard("H13")
@pytest.mark.parametrize(
    ("applied", "claimed", "extra", "measured"),
    [
        (100.0, "200", (), r"2\.50"),  # the calibrator shows another value
        (0.0, "100", (), r"-?0\.00"),  # the reference never applied
        (100.0, "100", ("--sensitivity", "4.2"), r"4\.20"),  # another transducer
    ],
    ids=["wrong-value", "not-applied", "wrong-part"],
)
def test_a_gain_out_of_bounds_is_refused_and_nothing_written(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    applied: float,
    claimed: str,
    extra: tuple[str, ...],
    measured: str,
) -> None:
    bench = Bench(tmp_path, *extra)
    try:
        code, out = calibrate(bench, capsys, monkeypatch, applied, "--reference-mmhg", claimed)
    finally:
        bench.pico.stop()
    assert code == 1, out
    assert re.search(f"a bridge of {measured} uV/V/mmHg", out), out
    assert "accepts 4.5..5.5 (GAIN_Q12 1110..1356)" in out
    assert not bench.calibration_file().exists()


@pytest.mark.parametrize("answer", ["q\n", ""], ids=["q", "end-of-input"])
def test_an_engineer_who_does_not_confirm_abandons_it(
    bench: Bench,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
) -> None:
    code, out = calibrate(
        bench, capsys, monkeypatch, 100.0, "--reference-mmhg", "100", answer=answer
    )
    assert code == 1
    assert "abandoned" in out and "nothing written" in out
    assert not bench.calibration_file().exists()


async def test_a_port_the_rig_holds_is_refused(
    bench: Bench, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert await asyncio.to_thread(main, ["firmware", "flash", "--port", bench.pico.port]) == 0
    board = IoBoard(bench.pico.port)  # the daemon's driver, holding the port as the daemon does
    await board.connect()
    try:
        monkeypatch.setattr("sys.stdin", bench.engineer(100.0))
        capsys.readouterr()
        args = ["firmware", "calibrate", "--port", bench.pico.port, "--reference-mmhg", "100"]
        code = await asyncio.to_thread(main, args)
        out = capsys.readouterr().out
        assert code == 1
        assert "in use by another program" in out and "stop the rig first" in out
        assert board.stats.crc_errors == 0 and board.malformed_frames == 0
    finally:
        await board.close()
    assert bench.prompts == 0 and not bench.calibration_file().exists()
