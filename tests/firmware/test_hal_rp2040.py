"""The RP2040 HAL and the main loop under CPython, against a fake `machine` (fake_machine.py):
the pins, the ADS1220's set-up and conversion, the e-stop interrupt, the WDT, the host link."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

import pytest

from drivers.ioboard.codec import (
    BoardHostCodec,
    BoardStatus,
    ConfigWatchdog,
    GetStatus,
    PressureSample,
    SetLight,
    SetPumpRelay,
)
from firmware import calibration
from firmware.board import Board
from firmware.main import run
from firmware.protocol import TRIP_CUTOFF
from tests.firmware.conftest import FlashRoot
from tests.firmware.fake_machine import SPI, WDT, FakeClock, Pin, fake_micropython


class Rig:
    """RpHal on fake hardware, with a pipe as the USB link, and the host's codec."""

    def __init__(self) -> None:
        from firmware import hal_rp2040

        self.mod = hal_rp2040
        rx_r, self.rx_w = os.pipe()
        tx_r, tx_w = os.pipe()
        os.set_blocking(tx_r, False)
        self.tx_r = tx_r
        self.hal = hal_rp2040.RpHal(
            zero_code=1000,
            gain_q12=256,
            host_in=open(rx_r, "rb", buffering=0),  # noqa: SIM115 - closed by close()
            host_out=open(tx_w, "wb", buffering=0),  # noqa: SIM115
        )
        self.board = Board(self.hal, b"PICO-TEST")
        self.host = BoardHostCodec()
        assert SPI.last is not None
        self.spi = SPI.last

    def pin(self, pin_id: int) -> Pin:
        return Pin.pins[pin_id]

    def loop(self, iterations: int) -> list[Any]:
        """Run the main loop (the clock moves 0.5 ms per pass); return what the host got."""
        run(self.hal, self.board, iterations=iterations)
        try:
            data = os.read(self.tx_r, 65536)
        except BlockingIOError:
            data = b""
        self.host.feed(data)
        return [m for frame in self.host.events() for m in frame.messages]

    def send(self, *messages: Any) -> None:
        os.write(self.rx_w, self.host.encode(*messages))


@pytest.fixture
def rig() -> Iterator[Rig]:
    with fake_micropython():
        FakeClock.us = (1 << 30) - 3000  # the tick clock wraps during the test
        rig = Rig()
        rig.pin(rig.mod.PIN_DRDY).level = 0  # DRDY low: a fresh conversion at every read
        yield rig


def test_power_up_leaves_the_relay_open_the_light_off_and_the_adc_converting(rig: Rig) -> None:
    assert rig.pin(rig.mod.PIN_RELAY).level == 0
    assert rig.hal._led.duty == 0
    # RESET, then the four configuration registers (1000 SPS continuous), then START
    assert rig.spi.written == [b"\x06", b"\x43\x0e\xc4\x40\x00", b"\x08"]
    assert rig.spi.settings["phase"] == 1  # the ADS1220 samples on the falling edge (SPI mode 1)


def test_adc_codes_become_calibrated_pressure_and_the_rails_are_reported(rig: Rig) -> None:
    rig.pin(rig.mod.PIN_DRDY).level = 0
    rig.spi.code = 1000 + 16 * 160  # (code - zero) >> 4 = 160; x 256 / 4096 = 10 cmmHg
    assert rig.hal.read_pressure_cmmhg(0) == 10
    rig.spi.code = 0x7FFFFF  # open bridge: positive full scale
    assert rig.hal.read_pressure_cmmhg(0) == 0x7FFF
    rig.spi.code = 0x800000  # shorted bridge: negative full scale
    assert rig.hal.read_pressure_cmmhg(0) == -0x8000
    rig.pin(rig.mod.PIN_DRDY).level = 1  # no new conversion: the last one repeats
    rig.spi.code = 1000
    assert rig.hal.read_pressure_cmmhg(0) == -0x8000


def test_the_main_loop_streams_samples_across_the_tick_wrap_and_feeds_the_wdt(rig: Rig) -> None:
    rig.spi.code = 1000 + 16 * 1600  # 1.00 mmHg
    got = rig.loop(40)  # 20 ms: crosses the 2^30 us wrap
    samples = [m for m in got if isinstance(m, PressureSample)]
    assert len(samples) == 10
    assert [s.sample_counter for s in samples] == list(range(10))
    assert any(s.t_us < 2000 for s in samples)  # wrapped...
    steps = {round((b.board_time_s - a.board_time_s) * 1e6) for a, b in itertools.pairwise(samples)}
    assert steps == {2000}  # ...and the host unwrapped it
    assert all(s.pressure_mmhg == 1.0 for s in samples)
    assert WDT.last is not None and WDT.last.timeout == rig.mod.WDT_TIMEOUT_MS
    assert WDT.last.feeds == 40


def test_host_commands_drive_the_relay_pin_and_the_led_pwm(rig: Rig) -> None:
    rig.loop(2)
    rig.send(ConfigWatchdog(500), SetPumpRelay(True), SetLight(250), GetStatus())
    got = rig.loop(2)
    assert rig.pin(rig.mod.PIN_RELAY).level == 1
    assert rig.hal._led.duty == 250 * 65535 // 1000
    status = [m for m in got if isinstance(m, BoardStatus)]
    assert status and status[0].relay_closed and status[0].light_permille == 250


def test_an_estop_press_shorter_than_a_sample_period_still_opens_the_relay(rig: Rig) -> None:
    rig.loop(2)
    rig.send(ConfigWatchdog(500), SetPumpRelay(True))
    rig.loop(2)
    assert rig.pin(rig.mod.PIN_RELAY).level == 1
    estop = rig.pin(rig.mod.PIN_ESTOP)
    estop.drive(1)  # NC contact opens: the interrupt records the edge
    estop.drive(0)  # ... and it is released before the next sample instant
    rig.loop(4)
    assert rig.pin(rig.mod.PIN_RELAY).level == 0
    assert rig.board.trips & 0x04


class Booted:
    """`firmware.main.build` on fake hardware, as `main()` boots the board: the calibration
    from a directory standing for the flash's root (`flash_root`), pipes as the USB link."""

    def __init__(self) -> None:
        from firmware.main import build

        rx_r, self.rx_w = os.pipe()
        self.tx_r, tx_w = os.pipe()
        os.set_blocking(self.tx_r, False)
        self.hal, self.board = build(
            host_in=open(rx_r, "rb", buffering=0),  # noqa: SIM115
            host_out=open(tx_w, "wb", buffering=0),  # noqa: SIM115
        )
        assert SPI.last is not None
        self.spi = SPI.last
        from firmware.hal_rp2040 import PIN_DRDY

        Pin.pins[PIN_DRDY].level = 0  # DRDY low: a fresh conversion at every read

    def samples(self, iterations: int) -> list[PressureSample]:
        run(self.hal, self.board, iterations=iterations)
        host = BoardHostCodec()
        host.feed(os.read(self.tx_r, 65536))
        return [
            m for frame in host.events() for m in frame.messages if isinstance(m, PressureSample)
        ]


def test_main_reads_the_calibration_from_the_flash(flash_root: FlashRoot) -> None:
    flash_root.write(calibration.text(21471, 1221, 100.0, 558359, "2026-12-02T14:00:00Z"))
    with fake_micropython():
        booted = Booted()
        booted.spi.code = 21471 + 16 * 3355  # 3355 * 1221 >> 12 = 1000 cmmHg
        samples = booted.samples(8)
    assert samples and all(s.pressure_mmhg == 10.0 for s in samples)
    assert not booted.board.trips


@pytest.mark.hazard("H13")
@pytest.mark.parametrize(
    "text",
    [None, "ZERO_CODE = 0\nGAIN_Q12 = 4096\n", "ZERO_CODE = 0\nGAIN_Q12 ="],
    ids=["missing", "gain-out-of-bounds", "malformed"],
)
def test_without_a_valid_calibration_the_transducer_is_at_the_rail(
    flash_root: FlashRoot, text: str | None
) -> None:
    """No scale was measured: the board reports a sensor fault, whatever the ADC says, and its
    cut-off latches (the host refuses fluid on a rail reading)."""
    if text is not None:
        flash_root.write(text)
    with fake_micropython():
        booted = Booted()
        booted.spi.code = 0  # a plausible code: it must not be read on an arbitrary scale
        samples = booted.samples(8)
    assert samples and all(s.at_rail and s.pressure_mmhg == 327.67 for s in samples)
    assert booted.board.trips & TRIP_CUTOFF
