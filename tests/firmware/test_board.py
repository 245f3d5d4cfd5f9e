"""firmware/board.py on a bare fake HAL: tick arithmetic across the 2^30 wrap, e-stop debounce."""

from __future__ import annotations

import itertools

from firmware import protocol as p
from firmware.board import ESTOP_RELEASE_DEBOUNCE_US, Board
from firmware.framing import Deframer, build_frame
from firmware.hal import Hal
from firmware.ticks import TICKS_MAX, ticks_add, ticks_diff

WRAP_SOON = TICKS_MAX + 1 - 50_000  # 50 ms before the tick clock wraps


class FakeHal(Hal):
    def __init__(self) -> None:
        self.now = WRAP_SOON
        self.relay = False
        self.button = False
        self.edge = False
        self.sent = bytearray()

    def ticks_us(self) -> int:
        return self.now

    def read_pressure_cmmhg(self, instant: int) -> int:
        return 1000

    def estop_input(self) -> bool:
        return self.button

    def take_estop_edge(self) -> bool:
        edge, self.edge = self.edge, False
        return edge

    def set_relay(self, closed: bool) -> None:
        self.relay = closed

    def set_light(self, permille: int) -> None:
        pass

    def write(self, frame: memoryview) -> None:
        self.sent += frame


def _board() -> tuple[Board, FakeHal]:
    hal = FakeHal()
    board = Board(hal, b"T")
    board.start(hal.now)
    for seq, msg in enumerate((bytes((p.CONFIG_WATCHDOG, 100, 0)), bytes((p.SET_PUMP_RELAY, 1)))):
        board.receive(build_frame(seq, msg))
    assert hal.relay
    return board, hal


def _run(board: Board, hal: FakeHal, us: int, heartbeat_every_us: int = 0) -> None:
    end = ticks_add(hal.now, us)
    seq = board.link.expected_seq
    while ticks_diff(end, hal.now) > 0:
        hal.now = ticks_add(hal.now, 1000)
        if heartbeat_every_us and hal.now % heartbeat_every_us < 1000:
            board.receive(build_frame(seq, bytes((p.HEARTBEAT,))))
            seq = (seq + 1) % 16
        board.poll(hal.now)


def test_ticks_diff_is_signed_across_the_wrap() -> None:
    assert ticks_diff(5, TICKS_MAX - 4) == 10
    assert ticks_diff(TICKS_MAX - 4, 5) == -10
    assert ticks_add(TICKS_MAX, 2) == 1


def test_the_watchdog_holds_across_the_tick_wrap_while_heartbeats_come() -> None:
    board, hal = _board()
    _run(board, hal, 200_000, heartbeat_every_us=20_000)  # crosses the wrap
    assert hal.now < WRAP_SOON  # wrapped
    assert hal.relay and not board.trips


def test_the_watchdog_trips_across_the_tick_wrap_when_heartbeats_stop() -> None:
    board, hal = _board()
    _run(board, hal, 40_000, heartbeat_every_us=20_000)
    _run(board, hal, 104_000)  # no heartbeat; the wrap falls inside the timeout
    assert board.trips == p.TRIP_WATCHDOG and not hal.relay


def test_samples_stay_on_a_2_ms_grid_across_the_wrap() -> None:
    board, hal = _board()
    hal.sent.clear()
    _run(board, hal, 100_000, heartbeat_every_us=20_000)
    deframer = Deframer()
    deframer.feed(bytes(hal.sent))
    times = []
    while (frame := deframer.next_frame()) is not None:
        if frame[1][:1] == bytes((p.PRESSURE_SAMPLE,)):
            times.append(int.from_bytes(frame[1][1:5], "little"))
    assert len(times) == 51  # the start instant and 50 more
    assert {ticks_diff(b, a) for a, b in itertools.pairwise(times)} == {2000}
    assert min(times) < 2000 <= WRAP_SOON <= max(times)


def test_a_bouncing_release_reports_one_release_after_the_debounce() -> None:
    board, hal = _board()
    hal.button = hal.edge = True
    _run(board, hal, 4000, heartbeat_every_us=2000)
    assert board.estop_pressed and not hal.relay
    for bounce in range(3):  # released, pressed again by the bounce, released...
        hal.button = bounce % 2 == 1
        _run(board, hal, 2000, heartbeat_every_us=2000)
    hal.button = False
    assert board.estop_pressed
    _run(board, hal, ESTOP_RELEASE_DEBOUNCE_US - 4000, heartbeat_every_us=2000)
    assert board.estop_pressed
    _run(board, hal, 6000, heartbeat_every_us=2000)
    assert not board.estop_pressed
    assert board.trips & p.TRIP_ESTOP  # the trip stays latched
