"""The self-test, one failure branch at a time, on a virtual clock.

The self-test is a safety control: a watchdog it never saw act would be trusted anyway. So each
way it can fail has a test here that breaks one device-side behaviour of otherwise healthy
devices and checks that exactly that check fails, with its reason. The doubles below model the
devices' behaviour in time (the pump's safe-mode timeout, the board's heartbeat watchdog and
relay, the daemon's heartbeats and reconnects), not a script of calls: a unit test of the
self-test alone. The self-test against the emulators on pseudo-terminals is in
tests/system/ (test_cli.py, test_roles.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import pytest

from drivers.ioboard import BoardStatus, Trip
from drivers.ne1000 import AlarmKind, PumpAlarmError, PumpError
from rig.safety.selftest import (
    PUMP_RECONNECT_TIMEOUT_S,
    SAFE_MODE_MARGIN_S,
    SelfTest,
    SelfTestReport,
    SelfTestSettings,
)
from tests.support.virtual_clock import VirtualClock

SETTINGS = SelfTestSettings(
    pump_safe_mode_timeout_s=1.0,
    board_watchdog_timeout_s=0.2,
    heartbeat_period_s=0.05,
    pressure_zero_tolerance_mmhg=1.0,
)
START_S = 100.0


class FakeHost:
    """The daemon as the self-test sees it: heartbeats run unless paused, the pump's supervisor
    reconnects a closed pump after `reconnect_after_s` (None: never)."""

    def __init__(self, clock: VirtualClock, board: FakeBoard) -> None:
        self._clock = clock
        self._board = board
        self._paused_at_s: float | None = None
        self.heartbeat_pauses: list[bool] = []
        """Every value the self-test set `heartbeats_paused` to, in order."""
        self.polling_pauses: list[bool] = []
        self.pressure_mmhg: float | None = 0.2
        self.reconnect_after_s: float | None = 0.3
        self.pump_closed_at_s: float | None = None
        self._connections = 1
        self.power_restored = 0
        self.log: list[str] = []

    @property
    def heartbeats_paused(self) -> bool:
        return self._paused_at_s is not None

    @heartbeats_paused.setter
    def heartbeats_paused(self, paused: bool) -> None:
        self.heartbeat_pauses.append(paused)
        if paused and self._paused_at_s is None:
            self._paused_at_s = self._clock.monotonic()
        elif not paused:
            self._paused_at_s = None

    @property
    def pump_polling_paused(self) -> bool:
        return bool(self.polling_pauses) and self.polling_pauses[-1]

    @pump_polling_paused.setter
    def pump_polling_paused(self, paused: bool) -> None:
        self.polling_pauses.append(paused)

    @property
    def last_heartbeat_s(self) -> float:
        return self._clock.monotonic() if self._paused_at_s is None else self._paused_at_s

    @last_heartbeat_s.setter
    def last_heartbeat_s(self, t_s: float) -> None:
        raise AssertionError("the self-test only reads the last heartbeat")

    @property
    def pump_connections(self) -> int:
        closed, after = self.pump_closed_at_s, self.reconnect_after_s
        reconnected = (
            closed is not None and after is not None and self._clock.monotonic() - closed >= after
        )
        return self._connections + (1 if reconnected else 0)

    @pump_connections.setter
    def pump_connections(self, count: int) -> None:
        raise AssertionError("the self-test only reads the connection count")

    def mean_pressure_mmhg(self) -> float | None:
        return self.pressure_mmhg

    async def restore_pump_power(self) -> None:
        self.power_restored += 1
        self.log.append("restore_pump_power")
        self._board.power_restored()


class FakePump:
    """An NE-1000 in safe mode: after `safe_mode_timeout_s` without an exchange it reports
    `silence_alarm` once (raised as an alarm reply or left in `last_alarm`)."""

    def __init__(self, clock: VirtualClock, host: FakeHost) -> None:
        self._clock = clock
        self._host = host
        self.safe_mode_timeout_s = SETTINGS.pump_safe_mode_timeout_s
        self.silence_alarm: AlarmKind | None = AlarmKind.SAFE_MODE_TIMEOUT
        self.alarm_as_reply = True
        self.unreachable: Exception | None = None
        self.dead_after_silence: Exception | None = None
        self._last_exchange_s = clock.monotonic()
        self._last_alarm: AlarmKind | None = None
        self.queries = 0

    @property
    def last_alarm(self) -> AlarmKind | None:
        return self._last_alarm

    async def query(self) -> object:
        self.queries += 1
        now_s = self._clock.monotonic()
        silent_s = now_s - self._last_exchange_s
        self._last_exchange_s = now_s
        self._last_alarm = None
        if self.unreachable is not None:
            raise self.unreachable
        if silent_s > self.safe_mode_timeout_s:
            if self.dead_after_silence is not None:
                raise self.dead_after_silence
            if self.silence_alarm is not None:
                if self.alarm_as_reply:
                    raise PumpAlarmError(self.silence_alarm)
                self._last_alarm = self.silence_alarm
        return "idle"

    async def close(self) -> None:
        self._host.log.append("pump.close")
        self._host.pump_closed_at_s = self._clock.monotonic()


class FakeBoard:
    """The I/O board: its watchdog opens the relay and latches a trip `watchdog_timeout_s` after
    the last heartbeat; a re-arm clears the trips, the pump's power closes the relay."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        self.host: FakeHost | None = None
        self.watchdog_timeout_s: float | None = SETTINGS.board_watchdog_timeout_s
        self.opens_relay = True
        self.latches_trip = True
        self.trip_seen_polls_later = 0
        """How many status polls after the relay opened the trip shows."""
        self.rearm_clears_trips = True
        self.power_closes_relay = True
        self.unreachable: Exception | None = None
        self.relay_closed = True
        self.trips = Trip(0)

    async def status(self) -> BoardStatus:
        if self.unreachable is not None:
            raise self.unreachable
        host = self.host
        assert host is not None
        timeout_s = self.watchdog_timeout_s
        if (
            host.heartbeats_paused
            and timeout_s is not None
            and self._clock.monotonic() - host.last_heartbeat_s >= timeout_s
        ):
            if self.opens_relay:
                self.relay_closed = False
            if self.latches_trip and self.trip_seen_polls_later > 0:
                self.trip_seen_polls_later -= 1
            elif self.latches_trip:
                self.trips |= Trip.WATCHDOG
        return BoardStatus(
            t_us=round(self._clock.monotonic() * 1e6) & 0xFFFFFFFF,
            relay_closed=self.relay_closed,
            estop_pressed=False,
            trips=self.trips,
            watchdog_timeout_ms=round(SETTINGS.board_watchdog_timeout_s * 1000),
            light_permille=0,
            cutoff_mmhg=60.0,
            zero_offset_mmhg=0.0,
        )

    def rearm(self) -> None:
        if self.rearm_clears_trips:
            self.trips = Trip(0)

    def power_restored(self) -> None:
        if self.power_closes_relay:
            self.relay_closed = True


class FakeInterlock:
    """The interlock's two self-test actions, passed on to the board."""

    def __init__(self, board: FakeBoard, host: FakeHost) -> None:
        self._board = board
        self._host = host
        self.zeroed = 0

    async def zero_pressure(self) -> None:
        self.zeroed += 1
        self._host.log.append("zero_pressure")

    async def rearm_board(self) -> None:
        self._host.log.append("rearm_board")
        self._board.rearm()


@dataclass
class Bench:
    clock: VirtualClock
    host: FakeHost
    pump: FakePump
    board: FakeBoard
    interlock: FakeInterlock
    expected_trip: list[bool]
    settings: SelfTestSettings = SETTINGS

    async def run(self) -> SelfTestReport:
        test = SelfTest(
            self.pump,
            self.board,
            self.interlock,
            self.host,
            self.settings,
            self.clock,
            expect_board_trip=self.expected_trip.append,
        )
        return await test.run()


@pytest.fixture
def bench() -> Bench:
    return make_bench()


def make_bench() -> Bench:
    clock = VirtualClock(START_S)
    board = FakeBoard(clock)
    host = FakeHost(clock, board)
    board.host = host
    return Bench(clock, host, FakePump(clock, host), board, FakeInterlock(board, host), [])


def checks(report: SelfTestReport) -> dict[str, bool]:
    return {c.name: c.passed for c in report.checks}


def detail(report: SelfTestReport, name: str) -> str:
    return next(c.detail for c in report.checks if c.name == name)


ALL_PASSED = {
    "pump_reachable": True,
    "board_reachable": True,
    "pump_safe_mode_timeout": True,
    "board_watchdog": True,
    "pressure_zero": True,
    "rearm": True,
}


def assert_released(bench: Bench) -> None:
    """Whatever happened, the daemon's periodic traffic runs again and no trip is expected."""
    assert bench.host.heartbeat_pauses[-1] is False
    assert bench.host.polling_pauses[-1] is False
    assert bench.expected_trip[-1] is False


# -- the healthy rig ---------------------------------------------------------------------------


async def test_healthy_devices_pass_every_check_in_order(bench: Bench) -> None:
    report = await bench.run()
    assert checks(report) == ALL_PASSED and report.passed
    assert [c.name for c in report.checks] == list(ALL_PASSED)
    assert bench.interlock.zeroed == 1
    assert bench.host.log == ["zero_pressure", "rearm_board", "restore_pump_power", "pump.close"]
    assert bench.board.relay_closed and bench.board.trips == Trip(0)
    assert_released(bench)
    assert report.summary() == "; ".join(f"{name} ok" for name in ALL_PASSED)
    # Paused for its own step, resumed at its end (and once more whatever happens).
    assert bench.host.polling_pauses == [True, False, False]
    assert bench.host.heartbeat_pauses == [True, False, False]
    assert bench.expected_trip == [True, False, False]


async def test_each_passed_check_says_what_it_saw(bench: Bench) -> None:
    report = await bench.run()
    assert [c.detail for c in report.checks] == [
        "pump answered a query",
        "board answered a status request",
        "pump raised alarm T after 1300 ms of silence (timeout 1 s)",
        "relay opened and latched a watchdog trip within 200 ms (timeout 200 ms)",
        "pressure at rest read 0.20 mmHg (±1); zeroed",
        "trip reset, pump powered and back in safe mode",
    ]
    as_dict = report.as_dict()
    assert as_dict["passed"] is True
    assert as_dict["checks"] == [
        {"name": c.name, "passed": True, "detail": c.detail, "measured_ms": c.measured_ms}
        for c in report.checks
    ]


async def test_the_result_is_logged(bench: Bench, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "rig.safety.selftest")
    report = await bench.run()
    bench.pump.unreachable = ConnectionError("port gone")
    failed = await bench.run()
    assert [r.getMessage() for r in caplog.records if r.name == "rig.safety.selftest"] == [
        f"self-test passed: {report.summary()}",
        f"self-test FAILED: {failed.summary()}",
    ]


async def test_the_summary_names_every_failed_check(bench: Bench) -> None:
    bench.pump.unreachable = ConnectionError("pump port gone")
    bench.board.unreachable = ConnectionError("board port gone")
    report = await bench.run()
    assert report.summary() == (
        "pump_reachable: pump did not answer: pump port gone; "
        "board_reachable: board did not answer: board port gone"
    )


async def test_the_pump_is_polled_again_while_the_board_watchdog_is_tested(bench: Bench) -> None:
    polled: list[bool] = []
    status = bench.board.status

    async def watched_status() -> BoardStatus:
        polled.append(not bench.host.pump_polling_paused)
        return await status()

    bench.board.status = watched_status  # type: ignore[method-assign]
    await bench.run()
    assert polled and all(polled)


async def test_the_silence_lasts_past_the_pump_timeout_and_is_measured_on_the_clock(
    bench: Bench,
) -> None:
    report = await bench.run()
    safe_mode = next(c for c in report.checks if c.name == "pump_safe_mode_timeout")
    expected_ms = (SETTINGS.pump_safe_mode_timeout_s + SAFE_MODE_MARGIN_S) * 1000.0
    assert safe_mode.measured_ms == pytest.approx(expected_ms)
    assert safe_mode.detail == "pump raised alarm T after 1300 ms of silence (timeout 1 s)"


async def test_the_pump_is_not_polled_during_its_silence(bench: Bench) -> None:
    polled_while_paused: list[bool] = []
    query = bench.pump.query

    async def watched_query() -> object:
        polled_while_paused.append(bench.host.pump_polling_paused)
        return await query()

    bench.pump.query = watched_query  # type: ignore[method-assign]
    await bench.run()
    # The first query (reachability) runs before the pause, the one after the silence during it.
    assert polled_while_paused[:2] == [False, True]
    assert not bench.host.pump_polling_paused


async def test_an_alarm_left_in_last_alarm_counts_like_an_alarm_reply(bench: Bench) -> None:
    bench.pump.alarm_as_reply = False
    report = await bench.run()
    assert report.passed, report.summary()


async def test_the_watchdog_opening_within_its_window_is_measured(bench: Bench) -> None:
    report = await bench.run()
    watchdog = next(c for c in report.checks if c.name == "board_watchdog")
    assert watchdog.measured_ms == pytest.approx(SETTINGS.board_watchdog_timeout_s * 1000.0)
    assert watchdog.detail == (
        "relay opened and latched a watchdog trip within 200 ms (timeout 200 ms)"
    )


async def test_a_watchdog_opening_at_the_earliest_allowed_moment_passes(bench: Bench) -> None:
    # Timeout less one heartbeat period: the board may count from the beat before the last.
    bench.board.watchdog_timeout_s = SETTINGS.board_watchdog_timeout_s - SETTINGS.heartbeat_period_s
    report = await bench.run()
    assert checks(report)["board_watchdog"], report.summary()


async def test_a_watchdog_trip_seen_a_poll_after_the_relay_opened_passes(bench: Bench) -> None:
    bench.board.trip_seen_polls_later = 1
    report = await bench.run()
    assert checks(report)["board_watchdog"], report.summary()


async def test_the_watchdog_figures_are_milliseconds() -> None:
    opens, never = make_bench(), make_bench()
    for bench, timeout_s in ((opens, 1.0), (never, None)):
        bench.settings = replace(SETTINGS, board_watchdog_timeout_s=1.0)
        bench.board.watchdog_timeout_s = timeout_s
    report = await opens.run()
    assert detail(report, "board_watchdog") == (
        "relay opened and latched a watchdog trip within 1000 ms (timeout 1000 ms)"
    )
    report = await never.run()
    assert detail(report, "board_watchdog") == (
        "relay still closed 1150 ms after the last heartbeat (timeout 1000 ms)"
    )


async def test_a_watchdog_opening_at_the_deadline_passes(bench: Bench) -> None:
    bench.board.watchdog_timeout_s = SETTINGS.board_watchdog_timeout_s + 0.14
    report = await bench.run()
    assert checks(report)["board_watchdog"], report.summary()


# -- each failure branch -------------------------------------------------------------------


@pytest.mark.parametrize(
    "error", [PumpError("checksum"), TimeoutError("no reply"), ConnectionError("port gone")]
)
async def test_an_unreachable_pump_fails_and_nothing_more_is_tried(
    bench: Bench, error: Exception
) -> None:
    bench.pump.unreachable = error
    report = await bench.run()
    assert checks(report) == {"pump_reachable": False, "board_reachable": True}
    assert detail(report, "pump_reachable") == f"pump did not answer: {error}"
    assert bench.clock.monotonic() == START_S  # no silence was started
    assert not report.passed
    assert report.summary() == f"pump_reachable: pump did not answer: {error}"
    assert_released(bench)


@pytest.mark.parametrize(
    "error", [TimeoutError("no reply"), ConnectionError("port gone"), RuntimeError("nack")]
)
async def test_an_unreachable_board_fails_and_nothing_more_is_tried(
    bench: Bench, error: Exception
) -> None:
    bench.board.unreachable = error
    report = await bench.run()
    assert checks(report) == {"pump_reachable": True, "board_reachable": False}
    assert detail(report, "board_reachable") == f"board did not answer: {error}"
    assert bench.clock.monotonic() == START_S
    assert_released(bench)


@pytest.mark.parametrize(
    "error", [PumpError("garbled"), TimeoutError("no reply"), ConnectionError("port gone")]
)
async def test_a_pump_that_does_not_answer_after_its_silence_fails(
    bench: Bench, error: Exception
) -> None:
    bench.pump.dead_after_silence = error
    report = await bench.run()
    assert checks(report)["pump_safe_mode_timeout"] is False
    assert "board_watchdog" not in checks(report)
    assert detail(report, "pump_safe_mode_timeout") == (
        f"pump did not answer after silence: {error}"
    )
    assert_released(bench)


async def test_a_pump_that_raises_no_alarm_after_its_timeout_fails(bench: Bench) -> None:
    bench.pump.silence_alarm = None
    report = await bench.run()
    assert checks(report)["pump_safe_mode_timeout"] is False
    assert "board_watchdog" not in checks(report)
    assert detail(report, "pump_safe_mode_timeout") == (
        "after 1300 ms of silence (timeout 1 s) the pump reported no alarm, "
        "expected SAFE_MODE_TIMEOUT"
    )
    assert_released(bench)


@pytest.mark.parametrize("as_reply", [True, False])
async def test_a_pump_that_raises_another_alarm_after_its_timeout_fails(
    bench: Bench, as_reply: bool
) -> None:
    bench.pump.silence_alarm = AlarmKind.STALLED
    bench.pump.alarm_as_reply = as_reply
    report = await bench.run()
    assert checks(report)["pump_safe_mode_timeout"] is False
    assert "reported STALLED, expected SAFE_MODE_TIMEOUT" in detail(
        report, "pump_safe_mode_timeout"
    )


async def test_a_pump_whose_timeout_is_longer_than_configured_fails(bench: Bench) -> None:
    bench.pump.safe_mode_timeout_s = SETTINGS.pump_safe_mode_timeout_s + SAFE_MODE_MARGIN_S + 0.1
    report = await bench.run()
    assert checks(report)["pump_safe_mode_timeout"] is False


async def test_a_board_whose_watchdog_never_opens_the_relay_fails(bench: Bench) -> None:
    bench.board.watchdog_timeout_s = None
    report = await bench.run()
    assert checks(report)["board_watchdog"] is False
    assert "pressure_zero" not in checks(report)
    assert bench.interlock.zeroed == 0
    assert detail(report, "board_watchdog") == (
        "relay still closed 350 ms after the last heartbeat (timeout 200 ms)"
    )
    assert_released(bench)


async def test_a_board_whose_watchdog_opens_after_the_deadline_fails(bench: Bench) -> None:
    bench.board.watchdog_timeout_s = SETTINGS.board_watchdog_timeout_s + 0.16
    report = await bench.run()
    assert checks(report)["board_watchdog"] is False


@pytest.mark.parametrize(
    ("opens_relay", "latches_trip"), [(True, False), (False, True)], ids=["no_trip", "relay_closed"]
)
async def test_a_watchdog_must_both_open_the_relay_and_latch_its_trip(
    bench: Bench, opens_relay: bool, latches_trip: bool
) -> None:
    bench.board.opens_relay = opens_relay
    bench.board.latches_trip = latches_trip
    report = await bench.run()
    assert checks(report)["board_watchdog"] is False
    assert bench.interlock.zeroed == 0


async def test_a_board_whose_watchdog_opens_too_soon_fails(bench: Bench) -> None:
    bench.board.watchdog_timeout_s = 0.1
    report = await bench.run()
    assert checks(report)["board_watchdog"] is False
    assert bench.interlock.zeroed == 0
    assert detail(report, "board_watchdog") == (
        "relay opened 100 ms after the last heartbeat: sooner than the timeout allows (150 ms)"
    )
    assert_released(bench)


async def test_the_board_trip_is_expected_only_while_its_watchdog_is_tested(bench: Bench) -> None:
    await bench.run()
    assert bench.expected_trip[0] is True
    assert bench.expected_trip[-1] is False


async def test_no_pressure_samples_fail_the_zero(bench: Bench) -> None:
    bench.host.pressure_mmhg = None
    report = await bench.run()
    assert checks(report)["pressure_zero"] is False
    assert detail(report, "pressure_zero") == "no pressure samples"
    assert "rearm" not in checks(report)
    assert bench.interlock.zeroed == 0
    assert_released(bench)


@pytest.mark.parametrize("reading_mmhg", [1.01, -1.01])
async def test_a_pressure_at_rest_outside_the_tolerance_fails_the_zero(
    bench: Bench, reading_mmhg: float
) -> None:
    bench.host.pressure_mmhg = reading_mmhg
    report = await bench.run()
    assert checks(report)["pressure_zero"] is False
    assert detail(report, "pressure_zero") == (
        f"pressure at rest reads {reading_mmhg:.2f} mmHg: outside ±1 mmHg "
        "(transducer offset, a closed line, or a drifting sensor)"
    )
    assert bench.interlock.zeroed == 0
    assert "rearm" not in checks(report)


@pytest.mark.parametrize("reading_mmhg", [1.0, -1.0])
async def test_a_pressure_at_rest_on_the_tolerance_is_zeroed(
    bench: Bench, reading_mmhg: float
) -> None:
    bench.host.pressure_mmhg = reading_mmhg
    report = await bench.run()
    assert checks(report)["pressure_zero"] is True
    assert bench.interlock.zeroed == 1
    assert detail(report, "pressure_zero") == (
        f"pressure at rest read {reading_mmhg:.2f} mmHg (±1); zeroed"
    )


async def test_the_zero_is_read_after_the_line_has_settled(bench: Bench) -> None:
    read_at: list[float] = []

    def watched_reading() -> float:
        read_at.append(bench.clock.monotonic())
        return 0.0

    bench.host.mean_pressure_mmhg = watched_reading  # type: ignore[method-assign]
    report = await bench.run()
    watchdog = next(c for c in report.checks if c.name == "board_watchdog")
    assert watchdog.measured_ms is not None
    # The relay opened at the last heartbeat + the measured time; the zero is read 0.3 s later.
    opened_s = START_S + SETTINGS.pump_safe_mode_timeout_s + SAFE_MODE_MARGIN_S
    opened_s += watchdog.measured_ms / 1000.0
    assert read_at == [pytest.approx(opened_s + 0.3)]


async def test_a_pump_that_does_not_reconnect_after_power_up_fails_the_rearm(
    bench: Bench,
) -> None:
    bench.host.reconnect_after_s = None
    report = await bench.run()
    assert checks(report)["rearm"] is False
    assert detail(report, "rearm") == (
        f"pump did not reconnect within {PUMP_RECONNECT_TIMEOUT_S:g} s after power-up"
    )
    closed_at = bench.host.pump_closed_at_s
    assert closed_at is not None
    waited_s = bench.clock.monotonic() - closed_at
    assert PUMP_RECONNECT_TIMEOUT_S < waited_s <= PUMP_RECONNECT_TIMEOUT_S + 0.06
    assert_released(bench)


async def test_a_pump_reconnecting_just_within_the_timeout_passes_the_rearm(
    bench: Bench,
) -> None:
    bench.host.reconnect_after_s = PUMP_RECONNECT_TIMEOUT_S
    report = await bench.run()
    assert checks(report)["rearm"] is True, report.summary()


async def test_the_rearm_waits_for_the_pump_to_reconnect(bench: Bench) -> None:
    bench.host.reconnect_after_s = 2.0
    report = await bench.run()
    assert report.passed
    closed_at = bench.host.pump_closed_at_s
    assert closed_at is not None
    # Polled every 50 ms: done on the first poll after the reconnect, not before it.
    assert 2.0 <= bench.clock.monotonic() - closed_at < 2.0 + 0.05 + 1e-9


async def test_a_board_whose_trip_survives_the_rearm_fails(bench: Bench) -> None:
    bench.board.rearm_clears_trips = False
    report = await bench.run()
    assert checks(report)["rearm"] is False
    assert detail(report, "rearm") == (
        f"board not re-armed: relay closed True, trips {Trip.WATCHDOG!r}"
    )
    assert_released(bench)


async def test_a_board_whose_relay_stays_open_after_power_up_fails_the_rearm(
    bench: Bench,
) -> None:
    bench.board.power_closes_relay = False
    report = await bench.run()
    assert checks(report)["rearm"] is False
    assert bench.host.power_restored == 1
    assert detail(report, "rearm").startswith("board not re-armed: relay closed False")


async def test_heartbeats_resume_before_the_rearm(bench: Bench) -> None:
    paused_at_rearm: list[bool] = []
    rearm = bench.interlock.rearm_board

    async def watched_rearm() -> None:
        paused_at_rearm.append(bench.host.heartbeats_paused)
        await rearm()

    bench.interlock.rearm_board = watched_rearm  # type: ignore[method-assign]
    await bench.run()
    assert paused_at_rearm == [False]


async def test_a_device_error_mid_test_propagates_and_releases_the_host(bench: Bench) -> None:
    status = bench.board.status
    calls = 0

    async def failing_status() -> BoardStatus:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise ConnectionError("board gone")
        return await status()

    bench.board.status = failing_status  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await bench.run()
    assert_released(bench)


def test_an_empty_report_has_not_passed() -> None:
    assert not SelfTestReport().passed
    assert SelfTestReport().as_dict() == {"passed": False, "checks": []}
