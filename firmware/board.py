"""The I/O board's behaviour (docs/protocols/ioboard.md section 5), on any HAL.

Sampling at fixed instants with tick timestamps, the host-heartbeat watchdog, the hard pressure
cut-off, the resistance stop, the e-stop with debounce, latched trips, the pump relay and the LED, and the host's
commands. The real board (`firmware.main`) and the simulator (drivers/sim/ioboard_device.py) run
this same class; only the HAL differs.

The sample path (`poll`, `sample`) allocates nothing: frames are built in preallocated buffers
and sent through memoryviews, times are tick values (small integers on the RP2040), pressures
integer centi-mmHg. MicroPython's garbage collector runs when an allocation fails, and its pause
(several milliseconds on an RP2040) would delay a sample or a trip. The command path allocates a
little (struct.unpack_from's tuple), at most once per host message.
"""

import math
import struct

from firmware import protocol as p
from firmware.framing import (
    FRAME_MAX_BYTES,
    PAYLOAD_MAX_BYTES,
    PAYLOAD_OFFSET,
    Deframer,
    finish_frame,
)
from firmware.hal import Hal
from firmware.link import DeviceLink
from firmware.ticks import ticks_add, ticks_diff

FIRMWARE_VERSION = (1, 3, 0)
"""The one definition of the firmware's version: the board reports it in IDENT, `rig firmware`
expects it (docs/firmware.md, "Flashing"). Bump it with every change to what is flashed.
1.2.1: the host link moved to firmware/host_link.py. 1.3.0: the transducer's calibration from
/calibration.py, the rail without one."""
SAMPLE_PERIOD_US = 2000
"""500 Hz: the ADS1220 converts at 1000 SPS, so each instant has a fresh conversion."""
CUTOFF_CEILING_CMMHG = 30000
"""300.00 mmHg: no SET_CUTOFF can raise the cut-off above this build constant."""
ZERO_LIMIT_CMMHG = 3000
"""A reading further from zero than 30 mmHg is a pressurised line or a faulty transducer, not a
zero error: zeroing it would hide real pressure from the cut-off."""
ZERO_AVERAGE_SAMPLES = 16
ESTOP_RELEASE_DEBOUNCE_US = 10000
"""A press acts at once (any contact closure trips: a bounce cannot un-trip a latch); a release
counts only after the input has read released for 10 ms, so contact bounce on release does not
report a press-release-press burst."""
MAX_CATCHUP_SAMPLES = 100
"""After a stall longer than this many periods the older instants are skipped (the counter still
advances, so the host sees the gap) instead of flooding the link with a stale burst."""

_SAMPLE_FRAME_BYTES = 1 + struct.calcsize(p.SAMPLE_ARGS) + 5
_EVENT_FRAME_BYTES = 1 + struct.calcsize(p.EVENT_ARGS) + 5
_RESISTANCE_FRAME_BYTES = 1 + struct.calcsize(p.RESISTANCE_TRIP_ARGS) + 5
_ARGS_OFFSET = PAYLOAD_OFFSET + 1
_RAIL_HIGH = p.PRESSURE_RAIL_HIGH_CMMHG
_RAIL_LOW = p.PRESSURE_RAIL_LOW_CMMHG

# pending events of one sample instant, as bits (no list on the sample path)
_EV_ESTOP_PRESSED = 1
_EV_ESTOP_RELEASED = 2
_EV_CUTOFF = 4
_EV_WATCHDOG = 8
_EV_RESISTANCE = 16

# The resistance stop's flow lags in fixed point (section 5.9), so that the sample path computes
# with small integers only (31-bit on the RP2040: a product at or above 2^30 would allocate a big
# integer). A lag holds uL/min << _LAG_SHIFT (at most 10000 << 6 = 640,000); its coefficient is
# alpha << _ALPHA_SHIFT, at most _ALPHA_MAX (alpha 0.039 for a 50 ms lag at 2 ms samples), so the
# product of the two stays below 2^30.
_LAG_SHIFT = 6
_ALPHA_SHIFT = 15
_ALPHA_MAX = 1600
_CR_PER_CMMHG_PER_UL_MIN = 1000
"""R in 0.01 mmHg*min/mL is cmmHg * 1000 / (uL/min)."""


class Board:
    def __init__(
        self,
        hal: Hal,
        serial_number: bytes,
        sample_period_us: int = SAMPLE_PERIOD_US,
        cutoff_ceiling_cmmhg: int = CUTOFF_CEILING_CMMHG,
    ) -> None:
        if len(serial_number) > p.SERIAL_NUMBER_BYTES:
            raise ValueError("serial_number: at most 16 bytes")
        self.hal = hal
        self.serial_number = serial_number
        self.sample_period_us = sample_period_us
        self.cutoff_ceiling_cmmhg = cutoff_ceiling_cmmhg
        self.link = DeviceLink()
        self._deframer = Deframer()

        # outputs and latched state, as after power-up (section 5.1)
        self.relay_closed = False
        self.trips = 0
        self.light_permille = 0
        self.cutoff_cmmhg = cutoff_ceiling_cmmhg
        self.zero_offset_cmmhg = 0
        self.watchdog_timeout_ms = 0
        """0 until the first CONFIG_WATCHDOG arms it; it cannot be disarmed."""
        self._last_heartbeat = 0

        # the resistance stop (section 5.9): disarmed until the host tells a flow
        self.flow_ul_min = 0
        self.resistance_limit_cr = 0xFFFF
        self.resistance_persistence = 1
        self._alpha_short = 0
        self._alpha_long = 0
        self._lag_short = 0
        self._lag_long = 0
        self._over_count = 0
        self._over_first = 0
        # the latched trip's report (RESISTANCE_TRIP): trigger and relay-opening ticks, R, flow
        self.resistance_trigger_t_us = 0
        self.resistance_relay_t_us = 0
        self.resistance_trip_cr = 0
        self.resistance_trip_flow_ul_min = 0
        self.resistance_trip_cmmhg = 0
        hal.set_relay(False)
        hal.set_light(0)

        # the e-stop as the board sees it (debounced)
        self.estop_pressed = False
        self._estop_released_at = 0
        self._estop_releasing = False

        # sampling
        self.sample_counter = 0
        """Counter of the next sample (u16 on the wire)."""
        self.samples_dropped = 0
        self._next_instant = 0
        self._started = False
        self._last_raw = _RAIL_HIGH
        self._zero_ring = [0] * ZERO_AVERAGE_SAMPLES
        self._zero_count = 0
        self._zero_next = 0

        # preallocated frames: the sample path builds into these and sends their memoryviews
        self._sample_buf = bytearray(_SAMPLE_FRAME_BYTES)
        self._sample_buf[PAYLOAD_OFFSET] = p.PRESSURE_SAMPLE
        self._sample_mv = memoryview(self._sample_buf)
        self._event_buf = bytearray(_EVENT_FRAME_BYTES)
        self._event_buf[PAYLOAD_OFFSET] = p.EVENT
        self._event_mv = memoryview(self._event_buf)
        self._resistance_buf = bytearray(_RESISTANCE_FRAME_BYTES)
        self._resistance_buf[PAYLOAD_OFFSET] = p.RESISTANCE_TRIP
        self._resistance_mv = memoryview(self._resistance_buf)
        self._reply_buf = bytearray(FRAME_MAX_BYTES)
        self._reply_mv = memoryview(self._reply_buf)
        self._reply_len = 0

    # --- sampling -----------------------------------------------------------------------------

    def start(self, first_instant: int) -> None:
        """Set the first sample instant (a tick value); later ones follow every period."""
        self._next_instant = first_instant
        self._started = True

    def poll(self, now: int) -> None:
        """Run every sample instant due by `now` (ticks)."""
        if not self._started:
            self.start(now)
        period = self.sample_period_us
        behind = ticks_diff(now, self._next_instant)
        if behind < 0:
            return
        skipped = behind // period + 1 - MAX_CATCHUP_SAMPLES
        if skipped > 0:
            self._next_instant = ticks_add(self._next_instant, skipped * period)
            self.sample_counter = (self.sample_counter + skipped) & 0xFFFF
            self.samples_dropped += skipped
        while ticks_diff(now, self._next_instant) >= 0:
            instant = self._next_instant
            self._next_instant = ticks_add(instant, period)
            self.sample(instant)

    def sample(self, instant: int) -> None:
        """One sample instant: read, check the trips (the relay opens before anything is sent),
        then send the sample frame and any events."""
        raw = self.hal.read_pressure_cmmhg(instant)
        # `==` twice, not `in (...)`: MicroPython builds that tuple at run time (an allocation)
        if raw == _RAIL_HIGH or raw == _RAIL_LOW:  # noqa: SIM109
            reading = raw
        else:
            self._zero_ring[self._zero_next] = raw
            self._zero_next = (self._zero_next + 1) % ZERO_AVERAGE_SAMPLES
            if self._zero_count < ZERO_AVERAGE_SAMPLES:
                self._zero_count += 1
            reading = raw - self.zero_offset_cmmhg
            if reading < p.READING_MIN_CMMHG:
                reading = p.READING_MIN_CMMHG
            elif reading > p.READING_MAX_CMMHG:
                reading = p.READING_MAX_CMMHG
        self._last_raw = raw

        events = self._check_estop(instant)
        if (reading >= self.cutoff_cmmhg or raw >= self.cutoff_ceiling_cmmhg) and not (
            self.trips & p.TRIP_CUTOFF
        ):
            self._trip(p.TRIP_CUTOFF)
            events |= _EV_CUTOFF
        if (
            self.watchdog_timeout_ms
            and not self.trips & p.TRIP_WATCHDOG
            and ticks_diff(instant, self._last_heartbeat) > self.watchdog_timeout_ms * 1000
        ):
            self._trip(p.TRIP_WATCHDOG)
            events |= _EV_WATCHDOG
        if self._check_resistance(instant, raw, reading):
            events |= _EV_RESISTANCE

        buf = self._sample_buf
        struct.pack_into(p.SAMPLE_ARGS, buf, _ARGS_OFFSET, instant, self.sample_counter, reading)
        self.sample_counter = (self.sample_counter + 1) & 0xFFFF
        finish_frame(buf, self.link.expected_seq, _SAMPLE_FRAME_BYTES - 5)
        self.hal.write(self._sample_mv)
        if events:
            # one event per frame, in a fixed order: e-stop, cut-off, watchdog
            if events & _EV_ESTOP_PRESSED:
                self._send_event(instant, p.EVENT_ESTOP_PRESSED, reading)
            if events & _EV_ESTOP_RELEASED:
                self._send_event(instant, p.EVENT_ESTOP_RELEASED, reading)
            if events & _EV_CUTOFF:
                self._send_event(instant, p.EVENT_CUTOFF_TRIP, reading)
            if events & _EV_WATCHDOG:
                self._send_event(instant, p.EVENT_WATCHDOG_TRIP, reading)
            if events & _EV_RESISTANCE:
                self._send_resistance_trip()

    def _check_resistance(self, instant: int, raw: int, reading: int) -> bool:
        """Section 5.9: R = P / max(Q, Q lagged short, Q lagged long) at or above the limit for
        `resistance_persistence` samples in a row latches the trip. True when it latched now.

        Both lags follow the commanded flow at every instant, armed or not, so a restart after
        a short stop still divides by the flow the line holds. No division here: the test is
        P * 1000 >= limit * Q, all small integers."""
        target = self.flow_ul_min << _LAG_SHIFT
        self._lag_short += ((target - self._lag_short) * self._alpha_short) >> _ALPHA_SHIFT
        self._lag_long += ((target - self._lag_long) * self._alpha_long) >> _ALPHA_SHIFT
        flow = self.flow_ul_min
        if (
            not flow
            or self.trips & p.TRIP_RESISTANCE
            or raw == _RAIL_HIGH  # a sensor fault, not a resistance: the cut-off's and the host's
            or raw == _RAIL_LOW
        ):
            self._over_count = 0
            return False
        lagged = self._lag_short >> _LAG_SHIFT
        if lagged > flow:
            flow = lagged
        lagged = self._lag_long >> _LAG_SHIFT
        if lagged > flow:
            flow = lagged
        if reading * _CR_PER_CMMHG_PER_UL_MIN < self.resistance_limit_cr * flow:
            self._over_count = 0
            return False
        if not self._over_count:
            self._over_first = instant
        self._over_count += 1
        if self._over_count < self.resistance_persistence:
            return False
        self._trip(p.TRIP_RESISTANCE)
        self.resistance_relay_t_us = self.hal.ticks_us()
        self.resistance_trigger_t_us = self._over_first
        cr = reading * _CR_PER_CMMHG_PER_UL_MIN // flow
        self.resistance_trip_cr = cr if cr < 0xFFFF else 0xFFFF
        self.resistance_trip_flow_ul_min = flow
        self.resistance_trip_cmmhg = reading
        self._over_count = 0
        return True

    def _pack_resistance_trip(self, buf: bytearray, at: int) -> None:
        struct.pack_into(
            p.RESISTANCE_TRIP_ARGS,
            buf,
            at,
            self.resistance_trigger_t_us,
            self.resistance_relay_t_us,
            self.resistance_trip_cr,
            self.resistance_trip_flow_ul_min,
            self.resistance_trip_cmmhg,
        )

    def _send_resistance_trip(self) -> None:
        buf = self._resistance_buf
        self._pack_resistance_trip(buf, _ARGS_OFFSET)
        finish_frame(buf, self.link.expected_seq, _RESISTANCE_FRAME_BYTES - 5)
        self.hal.write(self._resistance_mv)

    def _check_estop(self, instant: int) -> int:
        hal = self.hal
        # Both are read every time: the edge flag must be cleared even while the level is seen.
        edge = hal.take_estop_edge()
        if hal.estop_input() or edge:
            self._estop_releasing = False
            if not self.estop_pressed:
                self.estop_pressed = True
                self._trip(p.TRIP_ESTOP)
                return _EV_ESTOP_PRESSED
            return 0
        if not self.estop_pressed:
            return 0
        if not self._estop_releasing:
            self._estop_releasing = True
            self._estop_released_at = instant
        if ticks_diff(instant, self._estop_released_at) >= ESTOP_RELEASE_DEBOUNCE_US:
            self._estop_releasing = False
            self.estop_pressed = False
            return _EV_ESTOP_RELEASED
        return 0

    def _trip(self, trip: int) -> None:
        self.trips |= trip
        self._set_relay(False)

    def _set_relay(self, closed: bool) -> None:
        self.relay_closed = closed
        self.hal.set_relay(closed)

    def _send_event(self, instant: int, kind: int, reading: int) -> None:
        buf = self._event_buf
        struct.pack_into(p.EVENT_ARGS, buf, _ARGS_OFFSET, instant, kind, reading)
        finish_frame(buf, self.link.expected_seq, _EVENT_FRAME_BYTES - 5)
        self.hal.write(self._event_mv)

    # --- the host's commands ------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """Bytes from the host: every valid frame is answered at once (section 3.1)."""
        self._deframer.feed(data)
        while True:
            frame = self._deframer.next_frame()
            if frame is None:
                return
            seq, payload = frame
            if self.link.accept(seq, len(payload)):
                self._run(payload)
            self._send_reply_frame()  # the answer ends: its replies, or a pure ack

    @property
    def invalid_bytes(self) -> int:
        return self._deframer.invalid_bytes

    @property
    def crc_errors(self) -> int:
        return self._deframer.crc_errors

    def _run(self, payload: bytes) -> None:
        """Execute the messages in order; a message that does not decode (unknown id, truncated,
        out of range) stops the payload with a NACK, the ones before it stand."""
        pos = 0
        end = len(payload)
        while pos < end:
            msg_id = payload[pos]
            layout = p.HOST_ARGS.get(msg_id)
            if layout is None:
                self._nack(msg_id, p.NACK_UNKNOWN_MESSAGE)
                return
            size = struct.calcsize(layout)
            if pos + 1 + size > end:
                self._nack(msg_id, p.NACK_MALFORMED)
                return
            if msg_id == p.SET_FLOW:
                args = struct.unpack_from(layout, payload, pos + 1)
                reason = p.check_set_flow(*args)
                if reason:
                    self._nack(msg_id, reason)
                    return
                self._set_flow(*args)
                pos += 1 + size
                continue
            value = struct.unpack_from(layout, payload, pos + 1)[0] if size else 0
            reason = p.check_host_arg(msg_id, value)
            if reason:
                self._nack(msg_id, reason)
                return
            self._execute(msg_id, value)
            pos += 1 + size

    def _execute(self, msg_id: int, value: int) -> None:
        if msg_id == p.HEARTBEAT:
            self._last_heartbeat = self.hal.ticks_us()
        elif msg_id == p.CONFIG_WATCHDOG:
            self.watchdog_timeout_ms = value
            self._last_heartbeat = self.hal.ticks_us()
        elif msg_id == p.SET_PUMP_RELAY:
            self._relay_command(value == 1)
        elif msg_id == p.SET_LIGHT:
            self.light_permille = value
            self.hal.set_light(value)
        elif msg_id == p.SET_CUTOFF:
            self.cutoff_cmmhg = min(value, self.cutoff_ceiling_cmmhg)
        elif msg_id == p.RESET_TRIP:
            if self.estop_pressed:
                self._nack(msg_id, p.NACK_ESTOP_PRESSED)
                return
            self.trips = 0
            # The host that resets is alive; without this a watchdog trip would re-latch at the
            # next sample instant, before the host could send its next heartbeat.
            self._last_heartbeat = self.hal.ticks_us()
        elif msg_id == p.GET_STATUS:
            self._reply_status()
        elif msg_id == p.IDENTIFY:
            major, minor, patch = FIRMWARE_VERSION
            self._reply(
                p.IDENT_ARGS, p.IDENT, p.PROTOCOL_VERSION, major, minor, patch, self.serial_number
            )
        elif msg_id == p.ZERO_PRESSURE:
            self._zero()

    def _set_flow(
        self, flow_ul_min: int, limit_cr: int, lag_short_ms: int, lag_long_ms: int, persistence: int
    ) -> None:
        """SET_FLOW: the flow the pump was told (0: stopped, the stop disarmed) and the limits.
        The lags keep their state: they follow the flow through every change."""
        self.flow_ul_min = flow_ul_min
        self.resistance_limit_cr = limit_cr
        self.resistance_persistence = persistence
        self._alpha_short = self._alpha(lag_short_ms)
        self._alpha_long = self._alpha(lag_long_ms)
        if not flow_ul_min:
            self._over_count = 0

    def _alpha(self, lag_ms: int) -> int:
        # The exact first-order lag over one sample period, in fixed point (command path: the
        # float here is allowed).
        alpha = 1.0 - math.exp(-self.sample_period_us / (lag_ms * 1000.0))
        fixed = int(alpha * (1 << _ALPHA_SHIFT) + 0.5)
        return fixed if fixed < _ALPHA_MAX else _ALPHA_MAX

    def _relay_command(self, close: bool) -> None:
        """Section 5.2: opening is always obeyed; closing only with no e-stop, no latched trip and
        an armed watchdog, checked in that order."""
        if not close:
            self._set_relay(False)
        elif self.estop_pressed:
            self._nack(p.SET_PUMP_RELAY, p.NACK_ESTOP_PRESSED)
        elif self.trips:
            self._nack(p.SET_PUMP_RELAY, p.NACK_TRIP_LATCHED)
        elif not self.watchdog_timeout_ms:
            self._nack(p.SET_PUMP_RELAY, p.NACK_WATCHDOG_NOT_ARMED)
        else:
            self._set_relay(True)

    def _zero(self) -> None:
        if self.relay_closed:
            self._nack(p.ZERO_PRESSURE, p.NACK_RELAY_CLOSED)
            return
        n = self._zero_count
        if not n or self._last_raw == _RAIL_HIGH or self._last_raw == _RAIL_LOW:
            self._nack(p.ZERO_PRESSURE, p.NACK_SENSOR_FAULT)
            return
        ring = self._zero_ring
        total = 0
        for i in range(n):
            total += ring[i]
        mean = round(total / n)
        if abs(mean) > ZERO_LIMIT_CMMHG:
            self._nack(p.ZERO_PRESSURE, p.NACK_OUT_OF_RANGE)
            return
        self.zero_offset_cmmhg = mean

    def _reply_status(self) -> None:
        self._reply(
            p.STATUS_ARGS,
            p.STATUS,
            self.hal.ticks_us(),
            1 if self.relay_closed else 0,
            1 if self.estop_pressed else 0,
            self.trips,
            self.watchdog_timeout_ms,
            self.light_permille,
            self.cutoff_cmmhg,
            self.zero_offset_cmmhg,
        )
        if self.trips & p.TRIP_RESISTANCE:
            # the latched trip's report rides with the status: its EVENT frame may be lost
            self._reply_resistance_trip()

    def _reply_resistance_trip(self) -> None:
        size = 1 + struct.calcsize(p.RESISTANCE_TRIP_ARGS)
        if self._reply_len + size > PAYLOAD_MAX_BYTES:
            self._send_reply_frame()
        at = PAYLOAD_OFFSET + self._reply_len
        self._reply_buf[at] = p.RESISTANCE_TRIP
        self._pack_resistance_trip(self._reply_buf, at + 1)
        self._reply_len += size

    def _nack(self, msg_id: int, reason: int) -> None:
        self._reply(p.NACK_ARGS, p.NACK, msg_id, reason)

    def _reply(self, layout: str, msg_id: int, *args: object) -> None:
        """Append a reply to the answer; a full frame goes out first (the last one ends it)."""
        size = 1 + struct.calcsize(layout)
        if self._reply_len + size > PAYLOAD_MAX_BYTES:
            self._send_reply_frame()
        at = PAYLOAD_OFFSET + self._reply_len
        self._reply_buf[at] = msg_id
        struct.pack_into(layout, self._reply_buf, at + 1, *args)
        self._reply_len += size

    def _send_reply_frame(self) -> None:
        length = finish_frame(self._reply_buf, self.link.expected_seq, self._reply_len)
        self._reply_len = 0
        self.hal.write(self._reply_mv[:length])
