"""The board's resistance stop (firmware/board.py, protocol section 5.9) on a fake HAL that samples
the simulator's line model: a wall trips it within its persistence, a healthy duct never does
across the flow range and its transitions, and the trip latches until RESET_TRIP."""

from __future__ import annotations

import struct

import pytest

from drivers.ioboard.codec import BoardMessage, ResistanceTrip, SetFlow, decode_board_payload
from drivers.sim.world import FluidWorld, FluidWorldParams
from firmware import protocol as p
from firmware.board import Board
from firmware.framing import Deframer, build_frame
from firmware.hal import Hal
from firmware.ticks import TICKS_MAX, ticks_add, ticks_diff

PERIOD_US = 2000
LIMIT = 60.0
"""mmHg·min/mL: the profile's default devices.board.resistance_stop_mmhg_min_per_ml."""
LINE_TAU_MS = 300
"""The simulated line's time constant at the nominal duct (17 mmHg·min/mL)."""
LAG_LONG_MS = round(LINE_TAU_MS * LIMIT / 17.0)
"""The line's time constant at the board's limit: a duct that tight drains this slowly."""
HEALTHY_TIPS = (6.0, 15.0, 35.0)
"""Tip resistances of healthy ducts, the envelope's range (docs/safety/supervisors.md)."""
FLOWS = (0.1, 0.3, 1.0, 3.0)


class LineHal(Hal):
    """The board's HAL on the simulator's line: the ADC reads the world's line pressure."""

    def __init__(self, world: FluidWorld, noise_cmmhg: int = 0) -> None:
        self.world = world
        self.now = TICKS_MAX + 1 - 1_000_000  # the wrap falls inside the first simulated second
        self.relay = False
        self.sent = bytearray()
        self._noise = noise_cmmhg
        self._flip = 1

    def ticks_us(self) -> int:
        return self.now

    def read_pressure_cmmhg(self, instant: int) -> int:
        self._flip = -self._flip  # a worst-case noise: full amplitude, alternating sign
        return round(self.world.line_pressure_mmhg * 100) + self._flip * self._noise

    def estop_input(self) -> bool:
        return False

    def take_estop_edge(self) -> bool:
        return False

    def set_relay(self, closed: bool) -> None:
        self.relay = closed

    def set_light(self, permille: int) -> None:
        pass

    def write(self, frame: memoryview) -> None:
        self.sent += frame


class Rig:
    """A board, its line, and a host that sends whole frames in sequence."""

    def __init__(self, tip: float = 15.0, noise_cmmhg: int = 60) -> None:
        self.world = FluidWorld(FluidWorldParams(tip_resistance_mmhg_min_per_ml=tip))
        self.hal = LineHal(self.world, noise_cmmhg)
        self.board = Board(self.hal, b"T")
        self.board.start(self.hal.now)
        self._seq = 0
        self.send(bytes((p.CONFIG_WATCHDOG, 0xD0, 0x07)), bytes((p.SET_PUMP_RELAY, 1)))
        assert self.hal.relay

    def send(self, *messages: bytes) -> None:
        for message in messages:
            self.board.receive(build_frame(self._seq, message))
            self._seq = (self._seq + 1) % 16

    def flow(self, ml_min: float, limit: float = LIMIT, persistence: int = 2) -> None:
        """What the host does at every change of the commanded flow: tell the board, and the
        pump follows (here at once: the harder case for the board, no ramp)."""
        self.send(SetFlow(ml_min, limit, LINE_TAU_MS, LAG_LONG_MS, persistence).encode())
        self.world.set_pump_flow(ml_min if self.hal.relay else 0.0)

    def run(self, seconds: float) -> None:
        for _ in range(round(seconds * 1e6 / PERIOD_US)):
            self.hal.now = ticks_add(self.hal.now, PERIOD_US)
            if not self.hal.relay:
                self.world.set_pump_flow(0.0)  # the relay powers the pump
            self.world.step(PERIOD_US / 1e6)
            self.send(bytes((p.HEARTBEAT,)))
            self.board.poll(self.hal.now)

    def reports(self) -> list[ResistanceTrip]:
        deframer = Deframer()
        deframer.feed(bytes(self.hal.sent))
        out = []
        while (frame := deframer.next_frame()) is not None:
            out += [m for m in decode_board_payload(frame[1]) if isinstance(m, ResistanceTrip)]
        return out


@pytest.mark.hazard("H02")
def test_a_wall_trips_within_two_samples_and_reports_both_board_times() -> None:
    rig = Rig(noise_cmmhg=0)
    rig.flow(1.0)
    rig.run(2.0)
    assert not rig.board.trips
    rig.world.set_tip_resistance_target(15.0 * 12, 0.1)  # the simulator's tip_against_wall
    for _ in range(3000):
        rig.run(0.002)
        if rig.board.trips:
            break
    assert rig.board.trips == p.TRIP_RESISTANCE and not rig.hal.relay
    (trip,) = rig.reports()
    # the trigger is the first of the two samples over the limit; the relay opened at the second
    assert ticks_diff(trip.relay_open_t_us, trip.trigger_t_us) == PERIOD_US
    assert trip.latency_ms == 2.0
    assert trip.resistance_mmhg_min_per_ml >= LIMIT
    assert trip.pressure_mmhg == pytest.approx(trip.resistance_mmhg_min_per_ml * 1.0, abs=0.1)
    assert trip.flow_ml_min == pytest.approx(1.0, abs=0.002)


@pytest.mark.hazard("H02")
def test_the_trip_latches_until_reset_and_rides_with_every_status() -> None:
    rig = Rig(noise_cmmhg=0)
    rig.flow(0.3)
    rig.run(1.0)
    rig.world.occlude()
    rig.run(3.0)
    assert rig.board.trips == p.TRIP_RESISTANCE
    first = rig.reports()
    assert len(first) == 1  # one report per trip, not one per sample
    rig.flow(0.0)
    rig.world.clear()
    rig.run(1.0)
    rig.hal.sent.clear()
    rig.send(bytes((p.SET_PUMP_RELAY, 1)), bytes((p.GET_STATUS,)))
    assert not rig.hal.relay and rig.board.trips == p.TRIP_RESISTANCE
    deframer = Deframer()
    deframer.feed(bytes(rig.hal.sent))
    answers: list[BoardMessage] = []
    while (frame := deframer.next_frame()) is not None:
        answers += decode_board_payload(frame[1])
    kinds = [type(m).__name__ for m in answers]
    assert kinds == ["Nack", "BoardStatus", "ResistanceTrip"]
    assert answers[2] == first[0]
    rig.send(bytes((p.RESET_TRIP,)), bytes((p.SET_PUMP_RELAY, 1)))
    assert rig.hal.relay and not rig.board.trips


def test_no_flow_no_stop_whatever_the_pressure() -> None:
    rig = Rig(noise_cmmhg=0)
    rig.flow(1.0)
    rig.run(1.0)
    rig.flow(0.0)
    rig.world.occlude()
    rig.world.set_pump_flow(1.0)  # a pump that runs on after it was told to stop: not this
    rig.run(1.0)  # stop's business (the cut-off and the host's runaway check are)
    assert not rig.board.trips and rig.hal.relay


@pytest.mark.parametrize("tip", HEALTHY_TIPS)
def test_quiet_on_a_healthy_duct_over_the_flow_range_and_its_transitions(tip: float) -> None:
    """Every flow, steps up and down by up to 30x, stops and restarts 0.1 s later with the line
    still full, with a full-scale alternating noise of 0.6 mmHg on every sample."""
    rig = Rig(tip=tip)
    sequence = [*FLOWS, 0.1, 3.0, 0.1, 1.0, 0.3]
    for flow in sequence:
        rig.flow(flow)
        rig.run(1.5)
        rig.flow(0.0)
        rig.run(0.1)
        rig.flow(flow)
        rig.run(0.3)
        rig.flow(0.1)  # the irrigation back-off's deepest cut (10 %), or a 30x step down
        rig.run(1.0)
    assert not rig.board.trips, rig.reports()


def test_a_tight_duct_draining_after_a_cut_is_not_a_wall() -> None:
    """A duct tighter than the nominal drains slower than the line's nominal time constant; the
    long lag (the time constant at the board's limit) covers it."""
    rig = Rig(tip=35.0, noise_cmmhg=0)
    rig.flow(3.0)
    rig.run(3.0)
    rig.flow(0.3)
    rig.run(3.0)
    assert not rig.board.trips
    # ... while a board with only the nominal lag would have stopped it
    rig = Rig(tip=35.0, noise_cmmhg=0)
    rig.send(SetFlow(3.0, LIMIT, LINE_TAU_MS, LINE_TAU_MS, 2).encode())
    rig.world.set_pump_flow(3.0)
    rig.run(3.0)
    rig.send(SetFlow(0.3, LIMIT, LINE_TAU_MS, LINE_TAU_MS, 2).encode())
    rig.world.set_pump_flow(0.3)
    rig.run(3.0)
    assert rig.board.trips == p.TRIP_RESISTANCE


@pytest.mark.parametrize(
    ("args", "why"),
    [
        ((10001, 6000, 300, 1000, 2), "flow above 10 mL/min"),
        ((1000, 99, 300, 1000, 2), "limit below 1 mmHg·min/mL"),
        ((1000, 6000, 49, 1000, 2), "lag below 50 ms"),
        ((1000, 6000, 1000, 300, 2), "long lag shorter than the short one"),
        ((1000, 6000, 300, 60001, 2), "lag above 60 s"),
        ((1000, 6000, 300, 1000, 0), "no persistence"),
        ((1000, 6000, 300, 1000, 51), "persistence above 50 samples"),
    ],
)
def test_set_flow_out_of_range_is_refused_and_changes_nothing(
    args: tuple[int, ...], why: str
) -> None:
    rig = Rig(noise_cmmhg=0)
    rig.flow(1.0)
    rig.hal.sent.clear()
    rig.send(bytes((p.SET_FLOW,)) + struct.pack(p.HOST_ARGS[p.SET_FLOW], *args))
    assert bytes((p.NACK, p.SET_FLOW, p.NACK_OUT_OF_RANGE)) in bytes(rig.hal.sent), why
    assert rig.board.flow_ul_min == 1000 and rig.board.resistance_limit_cr == 6000
