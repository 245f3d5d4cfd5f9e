"""The controller's plant for unit tests: the simulator's fluid world behind a recording pump.

The world is the real physics model (a sim, not a mock); only the pump and relay drivers are
replaced, by a fake that records the commands it was given and moves the world's flow as the
real pump would.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from drivers.clock import ManualClock
from drivers.ioboard import SetFlow
from drivers.ne1000 import Direction
from drivers.sim.world import FluidWorld
from rig.config import FluidLoopConfig, LimitsConfig
from rig.fluid.controller import SAMPLE_PERIOD_S, FluidController, PumpReading
from rig.safety.interlock import Interlock
from rig.safety.supervisors import PlausibilitySettings


@dataclass
class RecordingPump:
    """Records its commands and, like the NE-1000, runs to its volume target (0: no target) and
    counts what it infused and withdrew, each from its last clear."""

    clock: ManualClock
    calls: list[str] = field(default_factory=list)
    running: bool = False
    direction: Direction = Direction.INFUSE
    rate_ml_min: float = 0.0
    stop_fails: bool = False
    target_ul: float = 0.0
    infused_ul: float = 0.0
    withdrawn_ul: float = 0.0
    _run_ul: float = 0.0

    def stop_nowait(self) -> float:
        if self.stop_fails:
            raise ConnectionError("pump cable pulled")
        self.calls.append("stop_nowait")
        self.running = False
        return self.clock.monotonic() + 0.004

    async def stop(self) -> None:
        self.calls.append("stop")
        self.running = False

    async def set_direction(self, direction: Direction) -> None:
        self.calls.append(f"dir {direction.name}")
        self.direction = direction

    async def set_rate(self, ml_min: float) -> None:
        self.calls.append(f"rate {ml_min:.3f}")
        self.rate_ml_min = ml_min

    async def set_volume_ul(self, ul: float) -> None:
        self.calls.append(f"volume {ul:.0f}")
        self.target_ul = ul

    async def clear_dispensed(self, direction: Direction) -> None:
        self.calls.append("clear")
        if direction is Direction.INFUSE:
            self.infused_ul = 0.0
        else:
            self.withdrawn_ul = 0.0

    async def run(self) -> None:
        self.calls.append("run")
        self.running = True
        self._run_ul = 0.0

    async def set_diameter(self, mm: float) -> None:
        self.calls.append(f"diameter {mm:g}")

    def stop_from_thread(self) -> None:
        self.calls.append("stop_from_thread")
        self.running = False

    def advance(self, dt_s: float) -> None:
        """Move the plunger for `dt_s`; stop at the volume target."""
        if not self.running:
            return
        step_ul = self.rate_ml_min * 1000.0 / 60.0 * dt_s
        if self.target_ul > 0:
            step_ul = min(step_ul, self.target_ul - self._run_ul)
        self._run_ul += step_ul
        if self.direction is Direction.INFUSE:
            self.infused_ul += step_ul
        else:
            self.withdrawn_ul += step_ul
        if self.target_ul > 0 and self._run_ul >= self.target_ul - 1e-9:
            self.running = False

    @property
    def flow_ml_min(self) -> float:
        if not self.running:
            return 0.0
        return self.rate_ml_min if self.direction is Direction.INFUSE else -self.rate_ml_min


@dataclass
class RecordingRelay:
    clock: ManualClock
    pump: RecordingPump | None = None
    """The pump this relay powers: opening the relay stops it, whatever it was told."""
    calls: list[str] = field(default_factory=list)

    def open_pump_relay_nowait(self) -> float:
        self.calls.append("open")
        if self.pump is not None:
            self.pump.running = False
        return self.clock.monotonic()

    async def set_pump_relay(self, closed: bool) -> None:
        self.calls.append("close" if closed else "open")

    async def reset_trip(self) -> None:
        self.calls.append("reset_trip")

    async def configure_watchdog(self, timeout_ms: int) -> None:
        self.calls.append(f"watchdog {timeout_ms}")

    async def set_cutoff(self, mmhg: float) -> None:
        self.calls.append(f"cutoff {mmhg:g}")

    async def zero_pressure(self) -> None:
        self.calls.append("zero")

    async def set_light(self, permille: int) -> None:
        self.calls.append(f"light {permille}")

    def set_flow_nowait(self, message: SetFlow) -> float | None:
        self.calls.append(f"flow {message.flow_ml_min:g}")
        return self.clock.monotonic()


class Plant:
    def __init__(
        self,
        limits: LimitsConfig | None = None,
        loop: FluidLoopConfig | None = None,
        *,
        primed: bool = True,
        plausibility: PlausibilitySettings | None = None,
    ) -> None:
        self.clock = ManualClock(100.0)
        self.world = FluidWorld(start_time_s=self.clock.monotonic())
        self.pump = RecordingPump(self.clock)
        self.relay = RecordingRelay(self.clock, self.pump)
        self.interlock = Interlock(self.pump, self.relay)
        self.interlock.self_test_passed = True
        self.interlock.set_links(pump=True, board=True)
        self.controller = FluidController(
            limits or LimitsConfig(),
            loop or FluidLoopConfig(),
            self.interlock,
            self.clock,
            plausibility,
        )
        self.events = []  # type: ignore[var-annotated]
        self.interlock.add_stop_listener(self.events.append)
        self.pressure_offset_mmhg = 0.0
        self._noise = random.Random(0)
        self._counter = 0
        self.controller.primed = primed
        self._sample()

    def _sample(self) -> None:
        # A live transducer is noisy (0.2 mmHg, as the board emulator's): without it the
        # stuck-sensor check would rightly call the reading stuck.
        t_us = round(self.clock.monotonic() * 1e6)
        pressure = (
            self.world.line_pressure_mmhg + self.pressure_offset_mmhg + self._noise.gauss(0.0, 0.2)
        )
        self.controller.on_sample(
            t_us, round(pressure, 2), self.clock.monotonic(), self.next_counter()
        )

    def next_counter(self) -> int:
        """The board's 16-bit sample counter for the next sample."""
        self._counter = (self._counter + 1) & 0xFFFF
        return self._counter

    async def read_dispensed_ml(self) -> PumpReading:
        return PumpReading(
            self.pump.infused_ul / 1000.0,
            self.pump.running and self.pump.direction is Direction.INFUSE,
        )

    async def run_for(self, seconds: float) -> None:
        """Advance time sample by sample; actuate every 10 samples (20 ms) as the daemon does."""
        for index in range(round(seconds / SAMPLE_PERIOD_S)):
            self.clock.advance(SAMPLE_PERIOD_S)
            self.world.set_pump_flow(self.pump.flow_ml_min)
            self.world.step(SAMPLE_PERIOD_S)
            self.pump.advance(SAMPLE_PERIOD_S)
            self._sample()
            if index % 10 == 0:
                await self.controller.actuate_once(self.read_dispensed_ml)
