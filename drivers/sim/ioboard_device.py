"""The simulated I/O board: simulated hardware running the board's firmware (`firmware/`).

`IoBoardDevice` is the board's HAL (`firmware.hal.Hal`) in the simulator: its ADC reads the
simulated line pressure (with the transducer's noise, zero error, drift and faults), its relay is
what powers the simulated pump, its e-stop input is a button the simulator presses, and its clock
is the machine's CLOCK_MONOTONIC in microseconds, wrapping at 2^30 like MicroPython's ticks_us.
Everything the board does (sampling, watchdog, cut-off, e-stop, trips, commands) is
`firmware.board.Board`, the code the real board runs: no second implementation of the board's
behaviour lives here.

The simulator owns the wire (a pty) and the physics; it passes time in (`now_s`). Because the board
clock is CLOCK_MONOTONIC, sample timestamps and host receive times share a time line and the host
can measure latency from the instant of sampling.
"""

from __future__ import annotations

import random

from drivers.ioboard.messages import Trip
from firmware import protocol
from firmware.board import FIRMWARE_VERSION, Board
from firmware.hal import Hal
from firmware.ticks import TICKS_MAX, ticks_diff

__all__ = ["FIRMWARE_VERSION", "IoBoardDevice"]


class IoBoardDevice(Hal):
    def __init__(
        self,
        serial_number: str = "SIM-0001",
        sample_rate_hz: int = 500,
        noise_mmhg: float = 0.2,
        seed: int = 0,
        cutoff_ceiling_mmhg: float = 300.0,
    ) -> None:
        if 1_000_000 % sample_rate_hz:
            raise ValueError(
                f"sample_rate_hz = {sample_rate_hz}: expected a divisor of 1,000,000 "
                "(sample instants are whole microseconds)"
            )
        self.serial_number = serial_number
        self.noise_mmhg = noise_mmhg
        self._rng = random.Random(seed)
        self._now_us = 0
        self._out = bytearray()

        # the physical side: the button, the transducer and its faults (for injection)
        self.estop_button_pressed = False
        self._estop_edge = False
        self.sensor_disconnected = False
        """An open bridge: the amplifier sits at its positive rail, which trips the cut-off."""
        self.sensor_stuck = False
        """A frozen ADC: the last conversion repeats."""
        self.sensor_offset_mmhg = 0.0
        """The transducer's own zero error (what ZERO_PRESSURE removes)."""
        self.pressure_offset_drift_mmhg_per_s = 0.0
        """Added to `sensor_offset_mmhg` as time passes (thermal drift)."""
        self._last_raw_cmmhg = 0
        self._segment: tuple[int, float, int, float] | None = None
        """The pressure between the last two `advance` calls: (t0_us, p0, t1_us, p1)."""
        self.relay_output = False
        self.light_output = 0

        self.board = Board(
            self,
            serial_number.encode("ascii"),
            sample_period_us=1_000_000 // sample_rate_hz,
            cutoff_ceiling_cmmhg=round(cutoff_ceiling_mmhg * 100),
        )

    # --- the simulator's side -----------------------------------------------------------------

    def receive(self, data: bytes, now_s: float) -> bytes:
        """Bytes from the host; returns the board's answers (acks, replies, nacks)."""
        self._now_us = _us(now_s)
        self.board.receive(data)
        return self._take_output()

    def advance(self, now_s: float, pressure_mmhg: float) -> bytes:
        """Run the board up to `now_s` with the true line pressure `pressure_mmhg`.

        Returns the sample frames (and any EVENT frames) the board sent in that time. Pressure
        between two calls is interpolated linearly, so a simulator stepping coarser than the
        sample period still produces a smooth stream.
        """
        now_us = _us(now_s)
        if self._segment is None:
            self._segment = (now_us, pressure_mmhg, now_us, pressure_mmhg)
            # the board's first sample instant: the last whole period, like a timer started then
            period = self.board.sample_period_us
            self.board.start((now_us // period * period) & TICKS_MAX)
        else:
            _, _, t1_us, p1 = self._segment
            self.sensor_offset_mmhg += (
                self.pressure_offset_drift_mmhg_per_s * max(now_us - t1_us, 0) / 1e6
            )
            self._segment = (t1_us, p1, now_us, pressure_mmhg)
        self._now_us = now_us
        self.board.poll(now_us & TICKS_MAX)
        return self._take_output()

    def press_estop(self) -> None:
        """Press the hardware button; the board acts on it at its next sample instant."""
        self.estop_button_pressed = True
        self._estop_edge = True

    def release_estop(self) -> None:
        """Release the button. The e-stop trip stays latched and the relay stays open."""
        self.estop_button_pressed = False

    def _take_output(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    # --- the board's state, as the simulator and the tests see it ------------------------------

    @property
    def relay_closed(self) -> bool:
        return self.board.relay_closed

    @property
    def trips(self) -> Trip:
        return Trip(self.board.trips)

    @property
    def estop_pressed(self) -> bool:
        """The board's (debounced) view of the button."""
        return self.board.estop_pressed

    @property
    def light_permille(self) -> int:
        return self.board.light_permille

    @property
    def cutoff_mmhg(self) -> float:
        return self.board.cutoff_cmmhg / 100

    @property
    def zero_offset_mmhg(self) -> float:
        return self.board.zero_offset_cmmhg / 100

    @property
    def watchdog_timeout_ms(self) -> int | None:
        """None until the first CONFIG_WATCHDOG arms it."""
        return self.board.watchdog_timeout_ms or None

    @property
    def expected_seq(self) -> int:
        return self.board.link.expected_seq

    @property
    def sample_counter(self) -> int:
        return self.board.sample_counter

    @property
    def samples_dropped(self) -> int:
        return self.board.samples_dropped

    # --- the HAL: what the firmware sees ---------------------------------------------------------

    def ticks_us(self) -> int:
        return self._now_us & TICKS_MAX

    def read_pressure_cmmhg(self, instant: int) -> int:
        if self.sensor_disconnected:
            return protocol.PRESSURE_RAIL_HIGH_CMMHG
        if self.sensor_stuck:
            return self._last_raw_cmmhg
        raw = self._true_pressure(instant) + self.sensor_offset_mmhg
        raw += self._rng.gauss(0.0, self.noise_mmhg)
        cmmhg = round(raw * 100)
        self._last_raw_cmmhg = max(
            min(cmmhg, protocol.READING_MAX_CMMHG), protocol.READING_MIN_CMMHG
        )
        return self._last_raw_cmmhg

    def _true_pressure(self, instant: int) -> float:
        assert self._segment is not None, "the board samples only inside advance()"
        t0_us, p0, t1_us, p1 = self._segment
        instant_us = t1_us + ticks_diff(instant, t1_us & TICKS_MAX)
        if t1_us <= t0_us:
            return p1
        frac = min(max((instant_us - t0_us) / (t1_us - t0_us), 0.0), 1.0)
        return p0 + (p1 - p0) * frac

    def estop_input(self) -> bool:
        return self.estop_button_pressed

    def take_estop_edge(self) -> bool:
        edge, self._estop_edge = self._estop_edge, False
        return edge

    def set_relay(self, closed: bool) -> None:
        self.relay_output = closed

    def set_light(self, permille: int) -> None:
        self.light_output = permille

    def write(self, frame: memoryview) -> None:
        self._out += frame

    def feed_watchdog(self) -> None:
        """The simulated board never hangs: nothing to reset."""


def _us(now_s: float) -> int:
    # round, not int: 1000.002 s is 1000001999.9999999 us in binary floating point, and
    # truncating it would put a sample instant or a heartbeat a microsecond early.
    return round(now_s * 1_000_000)
