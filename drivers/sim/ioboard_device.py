"""The rig I/O board's firmware logic, for the emulator: pure, no I/O, no asyncio.

The simulator owns the wire (a pty) and the physics; this class is what the microcontroller would
run. It speaks the protocol through the board's side of the codec (drivers/ioboard/framing.py,
messages.py, device_codec.py: docs/protocols/ioboard.md), which the host's codec is built on, so
host and emulator cannot drift apart on the bytes.

Time is passed in (`now_s`): the board's clock is the machine's CLOCK_MONOTONIC in the simulator,
so sample timestamps and host receive times share a time line and the host can measure latency
from the instant of sampling. The firmware polls its inputs (transducer, e-stop button) and checks
the watchdog and the cut-off once per sample instant; `advance` replays those instants.
"""

from __future__ import annotations

import random
from collections import deque

from drivers.ioboard.device_codec import AckRequest, BoardDeviceCodec, HostFrame
from drivers.ioboard.messages import (
    PRESSURE_RAIL_HIGH_CMMHG,
    PROTOCOL_VERSION,
    BoardEvent,
    BoardIdent,
    BoardMessage,
    BoardStatus,
    ConfigWatchdog,
    EventKind,
    GetStatus,
    Heartbeat,
    HostMessage,
    Identify,
    Nack,
    NackReason,
    PressureSample,
    ResetTrip,
    SetCutoff,
    SetLight,
    SetPumpRelay,
    Trip,
    ZeroPressure,
    encode_payload,
)

FIRMWARE_VERSION = (1, 0, 0)
ZERO_LIMIT_MMHG = 30.0
"""A reading further from zero than this is a pressurised line or a faulty transducer, not a
zero error: zeroing it would hide real pressure from the cut-off."""
ZERO_AVERAGE_SAMPLES = 16
MAX_SAMPLES_PER_ADVANCE = 100
"""A simulator stall longer than this many periods loses the older samples (the counter still
advances, so the host sees the gap) instead of flooding the link with a stale burst."""
_CMMHG_MIN = -0x7FFF
_CMMHG_MAX = 0x7FFE
"""Real readings stay clear of the two reserved rail codes."""


class IoBoardDevice:
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
        self.sample_period_us = 1_000_000 // sample_rate_hz
        self.noise_mmhg = noise_mmhg
        self.cutoff_ceiling_mmhg = cutoff_ceiling_mmhg
        self._rng = random.Random(seed)
        self._codec = BoardDeviceCodec()

        # outputs and latched state, as after power-up
        self.relay_closed = False
        self.trips = Trip(0)
        self.light_permille = 0
        self.cutoff_mmhg = cutoff_ceiling_mmhg
        self.zero_offset_mmhg = 0.0
        self.watchdog_timeout_ms: int | None = None
        """None until the first CONFIG_WATCHDOG arms it; it cannot be disarmed."""
        self._last_heartbeat_us = 0

        # physical inputs (the button) and the board's debounced view of it
        self.estop_button_pressed = False
        self.estop_pressed = False

        # transducer faults, for injection
        self.sensor_disconnected = False
        """An open bridge: the amplifier sits at its positive rail, which trips the cut-off."""
        self.sensor_stuck = False
        """A frozen ADC: the last reading repeats."""
        self.sensor_offset_mmhg = 0.0
        """The transducer's own zero error (what ZERO_PRESSURE removes)."""
        self.pressure_offset_drift_mmhg_per_s = 0.0
        """Added to `sensor_offset_mmhg` as time passes (thermal drift)."""

        # sampling
        self.sample_counter = 0
        """Counter of the next sample (u16 on the wire)."""
        self._next_instant: int | None = None
        self._last_advance: tuple[float, float] | None = None
        self._last_cmmhg = 0
        self._raw_history: deque[float] = deque(maxlen=ZERO_AVERAGE_SAMPLES)
        self.samples_dropped = 0

    # --- the host link ------------------------------------------------------------------------

    def receive(self, data: bytes, now_s: float) -> bytes:
        """Bytes from the host; returns the board's answers (acks, replies, nacks)."""
        self._codec.feed(data)
        out = bytearray()
        for event in self._codec.events():
            if isinstance(event, AckRequest):
                out += self._codec.encode()
                continue
            replies = self._run(event, now_s)
            out += self._frames(replies)
        return bytes(out)

    @property
    def expected_seq(self) -> int:
        return self._codec.expected_seq

    @property
    def codec(self) -> BoardDeviceCodec:
        return self._codec

    def _frames(self, replies: list[BoardMessage]) -> bytes:
        """Pack replies into as few frames as fit; an empty list still yields one (the ack)."""
        frames: list[bytes] = []
        batch: list[BoardMessage] = []
        for reply in replies:
            try:
                encode_payload((*batch, reply))
            except ValueError:
                frames.append(self._codec.encode(*batch))
                batch = []
            batch.append(reply)
        frames.append(self._codec.encode(*batch))
        return b"".join(frames)

    def _run(self, frame: HostFrame, now_s: float) -> list[BoardMessage]:
        replies: list[BoardMessage] = []
        for message in frame.messages:
            reply = self._execute(message, now_s)
            if reply is not None:
                replies.append(reply)
        if frame.nack is not None:
            replies.append(frame.nack)
        return replies

    def _execute(self, message: HostMessage, now_s: float) -> BoardMessage | None:
        match message:
            case Heartbeat():
                self._last_heartbeat_us = _us(now_s)
            case ConfigWatchdog(timeout_ms=timeout_ms):
                self.watchdog_timeout_ms = timeout_ms
                self._last_heartbeat_us = _us(now_s)
            case SetPumpRelay(closed=closed):
                if not closed:
                    self.relay_closed = False
                elif self.estop_pressed:
                    return Nack(message.MSG_ID, NackReason.ESTOP_PRESSED)
                elif self.trips:
                    return Nack(message.MSG_ID, NackReason.TRIP_LATCHED)
                elif self.watchdog_timeout_ms is None:
                    return Nack(message.MSG_ID, NackReason.WATCHDOG_NOT_ARMED)
                else:
                    self.relay_closed = True
            case SetLight(level_permille=level):
                self.light_permille = level
            case SetCutoff(cutoff_mmhg=cutoff_mmhg):
                self.cutoff_mmhg = min(cutoff_mmhg, self.cutoff_ceiling_mmhg)
            case ResetTrip():
                if self.estop_pressed:
                    return Nack(message.MSG_ID, NackReason.ESTOP_PRESSED)
                self.trips = Trip(0)
                # The host that resets is alive; without this a watchdog trip would re-latch at
                # the next sample instant, before the host could send its next heartbeat.
                self._last_heartbeat_us = _us(now_s)
            case GetStatus():
                return self.status(now_s)
            case Identify():
                return BoardIdent(PROTOCOL_VERSION, FIRMWARE_VERSION, self.serial_number)
            case ZeroPressure():
                return self._zero()
        return None

    def _zero(self) -> Nack | None:
        if self.relay_closed:
            return Nack(ZeroPressure.MSG_ID, NackReason.RELAY_CLOSED)
        if not self._raw_history or self.sensor_disconnected:
            return Nack(ZeroPressure.MSG_ID, NackReason.SENSOR_FAULT)
        reading = sum(self._raw_history) / len(self._raw_history)
        if abs(reading) > ZERO_LIMIT_MMHG:
            return Nack(ZeroPressure.MSG_ID, NackReason.OUT_OF_RANGE)
        self.zero_offset_mmhg = round(reading, 2)
        return None

    def status(self, now_s: float) -> BoardStatus:
        return BoardStatus(
            t_us=_t_us(now_s),
            relay_closed=self.relay_closed,
            estop_pressed=self.estop_pressed,
            trips=self.trips,
            watchdog_timeout_ms=self.watchdog_timeout_ms or 0,
            light_permille=self.light_permille,
            cutoff_mmhg=round(self.cutoff_mmhg, 2),
            zero_offset_mmhg=self.zero_offset_mmhg,
        )

    # --- the physical side --------------------------------------------------------------------

    def press_estop(self) -> None:
        """Press the hardware button; the board acts on it at its next sample instant."""
        self.estop_button_pressed = True

    def release_estop(self) -> None:
        """Release the button. The e-stop trip stays latched and the relay stays open."""
        self.estop_button_pressed = False

    def advance(self, now_s: float, pressure_mmhg: float) -> bytes:
        """Run every sample instant up to `now_s` with the true line pressure `pressure_mmhg`.

        Returns the sample frames (and any EVENT frames) the board sent in that time. Pressure
        between two calls is interpolated linearly, so a simulator stepping coarser than the
        sample period still produces a smooth stream.
        """
        now_us = _us(now_s)
        period = self.sample_period_us
        last_instant = now_us // period
        if self._next_instant is None:
            self._next_instant = last_instant
        if self._last_advance is not None:
            dt_s = now_s - self._last_advance[0]
            self.sensor_offset_mmhg += self.pressure_offset_drift_mmhg_per_s * max(dt_s, 0.0)
        prev_s, prev_p = self._last_advance or (now_s, pressure_mmhg)
        self._last_advance = (now_s, pressure_mmhg)

        skipped = last_instant - self._next_instant + 1 - MAX_SAMPLES_PER_ADVANCE
        if skipped > 0:
            self._next_instant += skipped
            self.sample_counter = (self.sample_counter + skipped) & 0xFFFF
            self.samples_dropped += skipped

        out = bytearray()
        while self._next_instant <= last_instant:
            instant_us = self._next_instant * period
            self._next_instant += 1
            instant_s = instant_us / 1_000_000
            span_s = now_s - prev_s
            if span_s > 0:
                frac = min(max((instant_s - prev_s) / span_s, 0.0), 1.0)
                true_p = prev_p + (pressure_mmhg - prev_p) * frac
            else:
                true_p = pressure_mmhg
            out += self._sample_instant(instant_us, true_p)
        return bytes(out)

    def _sample_instant(self, instant_us: int, true_mmhg: float) -> bytes:
        raw_mmhg, cmmhg = self._read_transducer(true_mmhg)
        t_us = instant_us & 0xFFFFFFFF
        messages: list[BoardMessage] = [
            PressureSample(t_us, self.sample_counter, cmmhg / 100),
        ]
        self.sample_counter = (self.sample_counter + 1) & 0xFFFF
        reading_mmhg = cmmhg / 100

        if self.estop_button_pressed != self.estop_pressed:
            self.estop_pressed = self.estop_button_pressed
            if self.estop_pressed:
                self._trip(Trip.ESTOP)
                messages.append(BoardEvent(t_us, EventKind.ESTOP_PRESSED, reading_mmhg))
            else:
                messages.append(BoardEvent(t_us, EventKind.ESTOP_RELEASED, reading_mmhg))

        over_cutoff = reading_mmhg >= self.cutoff_mmhg or raw_mmhg >= self.cutoff_ceiling_mmhg
        if over_cutoff and not self.trips & Trip.CUTOFF:
            self._trip(Trip.CUTOFF)
            messages.append(BoardEvent(t_us, EventKind.CUTOFF_TRIP, reading_mmhg))

        if (
            self.watchdog_timeout_ms is not None
            and not self.trips & Trip.WATCHDOG
            and instant_us - self._last_heartbeat_us > self.watchdog_timeout_ms * 1000
        ):
            self._trip(Trip.WATCHDOG)
            messages.append(BoardEvent(t_us, EventKind.WATCHDOG_TRIP, reading_mmhg))

        # One sample per frame keeps the sample frame at 14 bytes; events ride in their own.
        return b"".join(self._codec.encode(m) for m in messages)

    def _read_transducer(self, true_mmhg: float) -> tuple[float, int]:
        """The raw (uncorrected) reading in mmHg and the reported value in centi-mmHg."""
        if self.sensor_disconnected:
            return PRESSURE_RAIL_HIGH_CMMHG / 100, PRESSURE_RAIL_HIGH_CMMHG
        if self.sensor_stuck:
            return self._last_cmmhg / 100 + self.zero_offset_mmhg, self._last_cmmhg
        raw = true_mmhg + self.sensor_offset_mmhg + self._rng.gauss(0.0, self.noise_mmhg)
        self._raw_history.append(raw)
        cmmhg = min(max(round((raw - self.zero_offset_mmhg) * 100), _CMMHG_MIN), _CMMHG_MAX)
        self._last_cmmhg = cmmhg
        return raw, cmmhg

    def _trip(self, trip: Trip) -> None:
        self.trips |= trip
        self.relay_closed = False


def _us(now_s: float) -> int:
    # round, not int: 1000.002 s is 1000001999.9999999 us in binary floating point, and
    # truncating it would put a sample instant or a heartbeat a microsecond early.
    return round(now_s * 1_000_000)


def _t_us(now_s: float) -> int:
    return _us(now_s) & 0xFFFFFFFF
