"""The real board's HAL: RP2040 (Raspberry Pi Pico) under MicroPython. The only module that
touches `machine` (docs/firmware.md has the wiring and the part choices).

- Pressure: an ADS1220 24-bit ADC on SPI0 in continuous conversion at 1000 SPS, the bridge on
  AIN0/AIN1 at gain 128, ratiometric (the bridge excitation is the reference, REFP0/REFN0).
- Pump relay: GP14, high = closed (pump powered); low at reset and after a watchdog reset.
- LED: PWM on GP13 at 20 kHz.
- E-stop: GP15 with the pull-up, the button's normally-closed contact to ground: pressed, or a
  broken wire, reads high. A rising-edge interrupt records a press shorter than a sample period.
- machine.WDT: resets the board if the main loop stops feeding it (the relay then opens).
- Host link: USB CDC (sys.stdin/sys.stdout), with the REPL's Ctrl-C disabled (0x03 is data).
"""

import sys
import time

import machine
import micropython

from firmware import protocol
from firmware.hal import Hal
from firmware.host_link import HostLink
from firmware.ticks import TICKS_MAX

SPI_ID = 0
PIN_SCK = 18
PIN_MOSI = 19
PIN_MISO = 16
PIN_CS = 17
PIN_DRDY = 20
PIN_RELAY = 14
PIN_LED = 13
PIN_ESTOP = 15
LED_PWM_HZ = 20000
WDT_TIMEOUT_MS = 500
"""The RP2040's WDT accepts up to 8388 ms; 500 ms is 250 sample periods of a loop that never
takes more than a few. Once started it cannot be stopped."""

_ADS_RESET = 0x06
_ADS_START = 0x08
_ADS_WREG_0_4 = 0x43
"""WREG starting at register 0, four registers."""
_ADS_CONFIG = bytes(
    (
        0x0E,  # MUX AIN0/AIN1, gain 128, PGA on
        0xC4,  # 1000 SPS (normal mode), continuous conversion
        0x40,  # reference REFP0/REFN0 (ratiometric), no 50/60 Hz filter (it caps the rate)
        0x00,  # no IDACs
    )
)
_ADC_FULL_SCALE = 0x7FFFFF


class Ads1220:
    """The transducer's ADC: set up for continuous conversion at power-up, read one code at a
    time. `RpHal` samples it; `rig firmware calibrate` averages its codes from the REPL, so the
    calibration is measured through the same set-up the firmware runs."""

    def __init__(self) -> None:
        self._cs = machine.Pin(PIN_CS, machine.Pin.OUT, value=1)
        self._drdy = machine.Pin(PIN_DRDY, machine.Pin.IN)
        self._spi = machine.SPI(
            SPI_ID,
            baudrate=2_000_000,
            polarity=0,
            phase=1,
            sck=machine.Pin(PIN_SCK),
            mosi=machine.Pin(PIN_MOSI),
            miso=machine.Pin(PIN_MISO),
        )
        self._buf = bytearray(3)
        self._cs(0)
        self._spi.write(bytes((_ADS_RESET,)))
        time.sleep_us(100)
        self._spi.write(bytes((_ADS_WREG_0_4,)) + _ADS_CONFIG)
        self._spi.write(bytes((_ADS_START,)))
        self._cs(1)

    def ready(self) -> bool:
        """DRDY low: a conversion newer than the last read is ready."""
        return not self._drdy.value()

    def read_code(self) -> int:
        """The latest conversion as a signed 24-bit code. Sample path: no allocation."""
        buf = self._buf
        self._cs(0)
        self._spi.readinto(buf, 0xFF)
        self._cs(1)
        code = (buf[0] << 16) | (buf[1] << 8) | buf[2]
        if code & 0x800000:
            code -= 0x1000000
        return code

    def codes(self, n: int) -> list[int]:
        """The next `n` conversions (for the calibration, from the REPL: this allocates).
        OSError if the ADC stops converting (DRDY stays high 100 ms: 100 conversion periods)."""
        out: list[int] = []
        while len(out) < n:
            start = time.ticks_ms()
            while not self.ready():
                if time.ticks_diff(time.ticks_ms(), start) > 100:
                    raise OSError("ADS1220: no conversion within 100 ms (DRDY stays high)")
            out.append(self.read_code())
        return out


class RpHal(Hal):
    def __init__(
        self,
        zero_code: int | None = None,
        gain_q12: int | None = None,
        host_in: object = None,
        host_out: object = None,
    ) -> None:
        """`zero_code`, `gain_q12`: the transducer's calibration (firmware/calibration.py):
        centi-mmHg = ((code - zero_code) >> 4) * gain_q12 >> 12, which stays below 2^30 (no big
        integers, so no allocation) within calibration's bounds. Without them (None) there is no
        scale to read pressure on: every sample is the positive rail, a sensor fault (the
        board's cut-off latches, the host refuses fluid). `host_in`, `host_out`: the host link's
        binary streams, USB CDC's stdin and stdout by default."""
        micropython.kbd_intr(-1)
        self._calibrated = zero_code is not None and gain_q12 is not None
        self._zero_code = zero_code if zero_code is not None else 0
        self._gain_q12 = gain_q12 if gain_q12 is not None else 0
        self._relay = machine.Pin(PIN_RELAY, machine.Pin.OUT, value=0)
        self._led = machine.PWM(machine.Pin(PIN_LED))
        self._led.freq(LED_PWM_HZ)
        self._led.duty_u16(0)
        self._estop = machine.Pin(PIN_ESTOP, machine.Pin.IN, machine.Pin.PULL_UP)
        self._estop_edge = False
        self._estop.irq(trigger=machine.Pin.IRQ_RISING, handler=self._on_estop)
        self._adc = Ads1220()
        self._last_cmmhg = protocol.PRESSURE_RAIL_HIGH_CMMHG
        self._link = HostLink(
            host_in if host_in is not None else sys.stdin.buffer,
            host_out if host_out is not None else sys.stdout.buffer,
        )
        self._wdt = None

    def _on_estop(self, pin: object) -> None:
        # interrupt context: set a flag, allocate nothing
        self._estop_edge = True

    def start_watchdog(self) -> None:
        self._wdt = machine.WDT(timeout=WDT_TIMEOUT_MS)

    def ticks_us(self) -> int:
        return int(time.ticks_us()) & TICKS_MAX

    def read_pressure_cmmhg(self, instant: int) -> int:
        if not self._calibrated:
            return protocol.PRESSURE_RAIL_HIGH_CMMHG
        # A conversion newer than the last read is ready? At 1000 SPS there is one between any
        # two 2 ms instants; if not (the ADC stopped), the last value repeats and the host's
        # frozen-sensor check sees it.
        if not self._adc.ready():
            return self._last_cmmhg
        code = self._adc.read_code()
        if code >= _ADC_FULL_SCALE:
            cmmhg = protocol.PRESSURE_RAIL_HIGH_CMMHG
        elif code <= -_ADC_FULL_SCALE:
            cmmhg = protocol.PRESSURE_RAIL_LOW_CMMHG
        else:
            cmmhg = ((code - self._zero_code) >> 4) * self._gain_q12 >> 12
            if cmmhg > protocol.READING_MAX_CMMHG:
                cmmhg = protocol.READING_MAX_CMMHG
            elif cmmhg < protocol.READING_MIN_CMMHG:
                cmmhg = protocol.READING_MIN_CMMHG
        self._last_cmmhg = cmmhg
        return cmmhg

    def estop_input(self) -> bool:
        return bool(self._estop.value() == 1)

    def take_estop_edge(self) -> bool:
        edge = self._estop_edge
        self._estop_edge = False
        return edge

    def set_relay(self, closed: bool) -> None:
        self._relay.value(1 if closed else 0)

    def set_light(self, permille: int) -> None:
        self._led.duty_u16(permille * 65535 // 1000)

    def write(self, frame: memoryview) -> None:
        self._link.write(frame)

    def read_host(self) -> bytes:
        return self._link.read()

    def feed_watchdog(self) -> None:
        if self._wdt is not None:
            self._wdt.feed()

    def serial_number(self) -> bytes:
        """The RP2040's flash unique id, as 16 hex digits."""
        uid = machine.unique_id()
        return "".join(f"{b:02X}" for b in uid).encode()[:16]
