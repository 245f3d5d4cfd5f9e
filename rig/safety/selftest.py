"""The self-test at start: each device reachable, each device-side safety seen to act.

A watchdog that has never been seen to trip is a hope, not a control. So before the rig may
move fluid, the self-test makes each device-side safety act on purpose and watches it:

1. reachability: the pump answers a query, the board its status;
2. the pump's safe-mode timeout: the host goes silent to the pump for longer than the timeout,
   and the pump must report alarm T (then the alarm is cleared by the next exchange);
3. the board's heartbeat watchdog: the host stops its heartbeats, and the board must open the
   pump's power relay within its timeout and latch a watchdog trip;
4. the pressure zero: with the pump unpowered and the line at rest, the transducer must read
   zero within a tolerance; then it is zeroed (the board allows zeroing only with the relay
   open, which is now);
5. re-arm: the trip is reset, the pump's power restored, the pump reconnected (it boots in
   basic mode and must be put back into safe mode).

The rig refuses ACTIVE until this passes (rig/safety/rules.py: fluid actions need READY).

Every wait is on the injected clock, so the unit tests (tests/safety/test_selftest.py) run each
failure branch on a clock that moves only when the self-test sleeps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Protocol

from drivers.clock import Clock
from drivers.ioboard import BoardStatus, Trip
from drivers.ne1000 import AlarmKind, PumpAlarmError, PumpError

log = logging.getLogger(__name__)

STATUS_POLL_S = 0.01
WATCHDOG_MARGIN_S = 0.15
"""How late past its timeout the relay may open: a status round trip plus scheduling."""
SAFE_MODE_MARGIN_S = 0.3
PRESSURE_SETTLE_S = 0.3
"""How long the line rests, pump unpowered, before the zero is read."""
PUMP_RECONNECT_TIMEOUT_S = 8.0
PUMP_RECONNECT_POLL_S = 0.05


class SelfTestPump(Protocol):
    async def query(self) -> object: ...
    async def close(self) -> None: ...
    @property
    def last_alarm(self) -> AlarmKind | None: ...


class SelfTestBoard(Protocol):
    async def status(self) -> BoardStatus: ...


class SelfTestActuation(Protocol):
    """What the self-test does to the board, through the interlock (rig/safety/interlock.py):
    allowed only while the rig is in SELF_TEST."""

    async def zero_pressure(self) -> None: ...
    async def rearm_board(self) -> None: ...


class SelfTestHost(Protocol):
    """What the self-test needs of the daemon that runs it."""

    heartbeats_paused: bool
    pump_polling_paused: bool

    @property
    def last_heartbeat_s(self) -> float: ...
    @property
    def pump_connections(self) -> int:
        """How many times the pump's supervisor has connected it since start."""
        ...

    def mean_pressure_mmhg(self) -> float | None: ...
    async def restore_pump_power(self) -> None: ...


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str
    measured_ms: float | None = None


@dataclass
class SelfTestReport:
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def summary(self) -> str:
        failed = [c for c in self.checks if not c.passed]
        if not failed:
            return "; ".join(f"{c.name} ok" for c in self.checks)
        return "; ".join(f"{c.name}: {c.detail}" for c in failed)

    def as_dict(self) -> dict[str, object]:
        return {"passed": self.passed, "checks": [asdict(c) for c in self.checks]}


@dataclass(frozen=True)
class SelfTestSettings:
    pump_safe_mode_timeout_s: float
    board_watchdog_timeout_s: float
    heartbeat_period_s: float
    pressure_zero_tolerance_mmhg: float


class SelfTest:
    def __init__(
        self,
        pump: SelfTestPump,
        board: SelfTestBoard,
        interlock: SelfTestActuation,
        host: SelfTestHost,
        settings: SelfTestSettings,
        clock: Clock,
        *,
        expect_board_trip: Callable[[bool], None],
    ) -> None:
        self._pump = pump
        self._board = board
        self._interlock = interlock
        self._host = host
        self._settings = settings
        self._clock = clock
        self._expect_board_trip = expect_board_trip

    async def run(self) -> SelfTestReport:
        report = SelfTestReport()
        steps = (self._reachable, self._pump_safe_mode, self._board_watchdog_and_zero, self._rearm)
        try:
            for step in steps:
                result = await step()
                report.checks.extend(result)
                if not all(r.passed for r in result):
                    break
        finally:
            self._host.heartbeats_paused = False
            self._host.pump_polling_paused = False
            self._expect_board_trip(False)
        log.info("self-test %s: %s", "passed" if report.passed else "FAILED", report.summary())
        return report

    async def _reachable(self) -> list[CheckResult]:
        results = []
        try:
            await self._pump.query()
            results.append(CheckResult("pump_reachable", True, "pump answered a query"))
        except (PumpError, TimeoutError, ConnectionError) as exc:
            results.append(CheckResult("pump_reachable", False, f"pump did not answer: {exc}"))
        try:
            await self._board.status()
            results.append(CheckResult("board_reachable", True, "board answered a status request"))
        except (TimeoutError, ConnectionError, RuntimeError) as exc:
            results.append(CheckResult("board_reachable", False, f"board did not answer: {exc}"))
        return results

    async def _pump_safe_mode(self) -> list[CheckResult]:
        timeout_s = self._settings.pump_safe_mode_timeout_s
        self._host.pump_polling_paused = True
        silent_from_s = self._clock.monotonic()
        await self._clock.sleep(timeout_s + SAFE_MODE_MARGIN_S)
        alarm: AlarmKind | None = None
        try:
            await self._pump.query()
            alarm = self._pump.last_alarm
        except PumpAlarmError as exc:
            alarm = exc.alarm
        except (PumpError, TimeoutError, ConnectionError) as exc:
            return [
                CheckResult(
                    "pump_safe_mode_timeout", False, f"pump did not answer after silence: {exc}"
                )
            ]
        finally:
            self._host.pump_polling_paused = False
        silent_ms = (self._clock.monotonic() - silent_from_s) * 1000.0
        if alarm is not AlarmKind.SAFE_MODE_TIMEOUT:
            return [
                CheckResult(
                    "pump_safe_mode_timeout",
                    False,
                    f"after {silent_ms:.0f} ms of silence (timeout {timeout_s:g} s) the pump reported "
                    f"{'no alarm' if alarm is None else alarm.name}, expected SAFE_MODE_TIMEOUT",
                )
            ]
        # The alarm is reported once; the next valid exchange clears it.
        try:
            await self._pump.query()
        except PumpAlarmError:
            await self._pump.query()
        return [
            CheckResult(
                "pump_safe_mode_timeout",
                True,
                f"pump raised alarm T after {silent_ms:.0f} ms of silence (timeout {timeout_s:g} s)",
                measured_ms=silent_ms,
            )
        ]

    async def _board_watchdog_and_zero(self) -> list[CheckResult]:
        settings = self._settings
        self._expect_board_trip(True)
        self._host.heartbeats_paused = True
        last_heartbeat_s = self._host.last_heartbeat_s
        deadline_s = last_heartbeat_s + settings.board_watchdog_timeout_s + WATCHDOG_MARGIN_S
        status = await self._board.status()
        while (
            status.relay_closed or Trip.WATCHDOG not in status.trips
        ) and self._clock.monotonic() < deadline_s:
            await self._clock.sleep(STATUS_POLL_S)
            status = await self._board.status()
        opened_ms = (self._clock.monotonic() - last_heartbeat_s) * 1000.0
        earliest_ms = (settings.board_watchdog_timeout_s - settings.heartbeat_period_s) * 1000.0
        if status.relay_closed or Trip.WATCHDOG not in status.trips:
            return [
                CheckResult(
                    "board_watchdog",
                    False,
                    f"relay still closed {opened_ms:.0f} ms after the last heartbeat "
                    f"(timeout {settings.board_watchdog_timeout_s * 1000:.0f} ms)",
                )
            ]
        if opened_ms < earliest_ms:
            return [
                CheckResult(
                    "board_watchdog",
                    False,
                    f"relay opened {opened_ms:.0f} ms after the last heartbeat: sooner than "
                    f"the timeout allows ({earliest_ms:.0f} ms)",
                )
            ]
        results = [
            CheckResult(
                "board_watchdog",
                True,
                f"relay opened and latched a watchdog trip within {opened_ms:.0f} ms "
                f"(timeout {settings.board_watchdog_timeout_s * 1000:.0f} ms)",
                measured_ms=opened_ms,
            )
        ]
        results.append(await self._pressure_zero())
        return results

    async def _pressure_zero(self) -> CheckResult:
        # Let the line settle with the pump unpowered before reading the zero.
        await self._clock.sleep(PRESSURE_SETTLE_S)
        reading = self._host.mean_pressure_mmhg()
        tolerance = self._settings.pressure_zero_tolerance_mmhg
        if reading is None:
            return CheckResult("pressure_zero", False, "no pressure samples")
        if abs(reading) > tolerance:
            return CheckResult(
                "pressure_zero",
                False,
                f"pressure at rest reads {reading:.2f} mmHg: outside ±{tolerance:g} mmHg "
                "(transducer offset, a closed line, or a drifting sensor)",
            )
        await self._interlock.zero_pressure()
        return CheckResult(
            "pressure_zero",
            True,
            f"pressure at rest read {reading:.2f} mmHg (±{tolerance:g}); zeroed",
        )

    async def _rearm(self) -> list[CheckResult]:
        self._host.heartbeats_paused = False
        await self._interlock.rearm_board()
        self._expect_board_trip(False)
        await self._host.restore_pump_power()
        # The pump has just booted in basic mode: drop the link so its supervisor reconnects
        # and puts it back into safe mode.
        connections = self._host.pump_connections
        await self._pump.close()
        start_s = self._clock.monotonic()
        while self._host.pump_connections == connections:
            if self._clock.monotonic() - start_s > PUMP_RECONNECT_TIMEOUT_S:
                return [
                    CheckResult(
                        "rearm",
                        False,
                        f"pump did not reconnect within {PUMP_RECONNECT_TIMEOUT_S:g} s after power-up",
                    )
                ]
            await self._clock.sleep(PUMP_RECONNECT_POLL_S)
        status = await self._board.status()
        if not status.relay_closed or status.trips:
            return [
                CheckResult(
                    "rearm",
                    False,
                    f"board not re-armed: relay closed {status.relay_closed}, "
                    f"trips {status.trips!r}",
                )
            ]
        return [CheckResult("rearm", True, "trip reset, pump powered and back in safe mode")]
