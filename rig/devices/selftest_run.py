"""Running the self-test (rig/safety/selftest.py) on the rig's pump and I/O board.

The self-test checks those two devices' own safeties (the pump's safe-mode timeout, the board's
watchdog and the transducer's zero), so it is built around them: this module finds them in the
registry, gives the self-test what it needs of the daemon, and runs it whenever the rig is whole,
unlatched and not yet checked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from rig.devices.board import BoardDevice
from rig.devices.contract import DeviceContext
from rig.devices.pump import PumpDevice
from rig.devices.registry import DeviceRegistry
from rig.safety.selftest import CheckResult, SelfTest, SelfTestReport, SelfTestSettings
from rig.safety.states import RigState

log = logging.getLogger(__name__)

IDLE_CHECK_S = 0.2


class SelfTestRunner:
    def __init__(
        self,
        registry: DeviceRegistry,
        context: DeviceContext,
        on_report: Callable[[SelfTestReport], None],
    ) -> None:
        self._pump = registry.one(PumpDevice)
        self._board = registry.one(BoardDevice)
        self._context = context
        self._on_report = on_report
        self._lock = asyncio.Lock()
        self.last_report: SelfTestReport | None = None

    # What the self-test needs of its host (rig.safety.selftest.SelfTestHost).

    @property
    def heartbeats_paused(self) -> bool:
        return self._board.heartbeats_paused

    @heartbeats_paused.setter
    def heartbeats_paused(self, paused: bool) -> None:
        self._board.heartbeats_paused = paused

    @property
    def last_heartbeat_s(self) -> float:
        return self._board.last_heartbeat_s

    @property
    def pump_polling_paused(self) -> bool:
        return self._context.controller.polling_paused

    @pump_polling_paused.setter
    def pump_polling_paused(self, paused: bool) -> None:
        self._context.controller.polling_paused = paused

    @property
    def pump_connections(self) -> int:
        return self._pump.connections

    def mean_pressure_mmhg(self) -> float | None:
        return self._context.controller.mean_pressure_mmhg

    async def restore_pump_power(self) -> None:
        await self._context.interlock.restore_pump_power()

    def _expect_board_trip(self, expected: bool) -> None:
        self._board.expecting_watchdog_trip = expected

    # Running it.

    async def run_when_needed(self) -> None:
        """Run the self-test whenever the rig is whole, unlatched and not yet checked."""
        while True:
            interlock = self._context.interlock
            if (
                interlock.state is RigState.OFFLINE
                and interlock.fluid_links_up
                and interlock.latched is None
                and not interlock.self_test_passed
            ):
                await self.run()
            await asyncio.sleep(IDLE_CHECK_S)

    async def run(self) -> SelfTestReport:
        async with self._lock:
            interlock = self._context.interlock
            interlock.begin_self_test()
            self._context.state_changed()
            profile = self._context.profile
            pump_cfg, board_cfg = profile.devices.pump, profile.devices.board
            settings = SelfTestSettings(
                pump_safe_mode_timeout_s=float(pump_cfg.safe_mode_timeout_s),
                board_watchdog_timeout_s=board_cfg.watchdog_timeout_ms / 1000.0,
                heartbeat_period_s=board_cfg.heartbeat_period_ms / 1000.0,
                pressure_zero_tolerance_mmhg=profile.fluid.pressure_zero_tolerance_mmhg,
            )
            test = SelfTest(
                self._pump.link,
                self._board.link,
                interlock,
                self,
                settings,
                self._context.clock,
                expect_board_trip=self._expect_board_trip,
            )
            try:
                report = await test.run()
            except Exception as exc:
                log.exception("self-test aborted")
                report = SelfTestReport()
                report.checks.append(
                    CheckResult("self_test", False, f"aborted: {type(exc).__name__}: {exc}")
                )
            self.last_report = report
            self._on_report(report)
            interlock.end_self_test(report.passed, report.summary())
            self._context.state_changed()
            return report
