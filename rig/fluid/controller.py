"""The fluid controller: modes, setpoints, and the stops its supervisor decides.

Two halves with one owner:

- `on_sample` is the hot path. It runs synchronously for every pressure sample the I/O board
  sends (500 per second), updates the resistance estimate and asks the stop supervisor
  (rig/fluid/supervision.py, where every supervisory stop is decided) about it. A stop goes
  straight to `Interlock.trip`, which writes the pump's stop bytes before returning.
- `run_actuation` is the task that turns the current mode into pump commands (start, rate
  changes, ordinary stops) and polls the pump's dispensed volume, which also keeps the pump's
  safe-mode timeout fed.

Modes form a small state machine where FAULT is an ordinary state: entering it zeroes every
setpoint, and only `reset` leaves it, to STOPPED. Nothing ever resumes a setpoint from before a
stop: a new command is needed to move fluid again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from drivers.clock import Clock
from rig.config import FluidLoopConfig, LimitsConfig
from rig.fluid.events import StopCause, StopEvent
from rig.fluid.resistance import ResistanceEstimator, ResistanceReading
from rig.fluid.supervision import STALE_AFTER_S, Stop, StopSupervisor
from rig.safety.interlock import (
    FluidFacts,
    Interlock,
    InterlockDeniedError,
    MotionCancelledError,
    PumpFaultError,
)
from rig.safety.rules import Action
from rig.safety.states import RigState
from rig.safety.supervisors import PlausibilitySettings, Tolerance

log = logging.getLogger(__name__)

SAMPLE_PERIOD_S = 0.002
"""The I/O board samples pressure at 500 Hz (docs/protocols/ioboard.md)."""

ACTUATION_TICK_S = 0.02
PRESSURE_MEAN_SAMPLES = 10
"""Setpoint laws use the mean of the last 20 ms of pressure; the stop checks use every sample."""
RELIEF_RATE_ML_MIN = 1.0
RELIEF_MIN_UL = 0.5
"""A relief smaller than this is not worth moving the plunger for (the pump's resolution on a
10 mL syringe is about 0.1 uL)."""
RATE_CHANGE_TOLERANCE = 0.02
ZERO_TRUSTED_STATES = frozenset({RigState.READY, RigState.ACTIVE})
"""The self-test has taken the pressure zero and no fault has happened since: the reading at rest
is checked against it. (Offline or in self-test the zero is not yet taken; in a fault the duct
may hold the pressure that caused it.)"""

# Pressure mode: a PI law from pressure error to flow, with anti-windup at the flow limits. The
# integral starts at the flow a tight duct (40 mmHg·min/mL) would need for the setpoint: a
# cautious first flow, and no bump. Tuned on the simulator's nominal duct (17 mmHg·min/mL,
# 0.3 s time constant) with rate updates every 100 ms.
PRESSURE_KP_ML_MIN_PER_MMHG = 0.03
PRESSURE_KI_ML_MIN_PER_MMHG_S = 0.3
PRESSURE_ASSUMED_RESISTANCE_MMHG_MIN_PER_ML = 40.0
PRESSURE_MIN_MMHG = 1.0
"""The lowest pressure `fluid.hold_pressure` holds: below it the loop would only ever stop."""


class FluidMode(StrEnum):
    STOPPED = "stopped"
    PRIMING = "priming"
    IRRIGATING = "irrigating"
    HOLD_PRESSURE = "hold_pressure"
    BOLUS = "bolus"
    FAULT = "fault"


MODE_ACTIONS = {
    FluidMode.PRIMING: Action.PRIME,
    FluidMode.IRRIGATING: Action.IRRIGATE,
    FluidMode.HOLD_PRESSURE: Action.HOLD_PRESSURE,
    FluidMode.BOLUS: Action.BOLUS,
}

MOTION_MODES = frozenset(
    {FluidMode.PRIMING, FluidMode.IRRIGATING, FluidMode.HOLD_PRESSURE, FluidMode.BOLUS}
)


@dataclass(frozen=True)
class PumpReading:
    """One poll of the pump: its own count for the current run, and whether it says it infuses."""

    infused_ml: float
    infusing: bool


DispensedReader = Callable[[], Awaitable[PumpReading]]


class CommandRejectedError(ValueError):
    """A fluid command whose values are out of range (the API's `out_of_range`)."""


class StateConflictError(CommandRejectedError):
    """A fluid command that is in range but conflicts with what the pump is doing now, e.g. a
    bolus while pressure is held (the API's `state_conflict`: stop first, then ask again)."""


@dataclass(frozen=True)
class Setpoint:
    mode: FluidMode
    flow_ml_min: float = 0.0
    pressure_mmhg: float = 0.0
    volume_ul: float | None = None


STOPPED = Setpoint(FluidMode.STOPPED)


def plausibility_settings(loop: FluidLoopConfig) -> PlausibilitySettings:
    """The supervisors' tolerances, with what the profile sets taken from it."""
    return PlausibilitySettings(
        line_time_constant_s=loop.line_time_constant_ms / 1000.0,
        nominal_resistance_mmhg_min_per_ml=loop.nominal_resistance_mmhg_min_per_ml,
        pressure_noise_mmhg=loop.pressure_noise_mmhg,
        pressure_model_mmhg=Tolerance(
            loop.line_model_tolerance_mmhg, loop.line_model_tolerance_ms / 1000.0
        ),
        # The zero must hold at every rest within the tolerance the self-test took it to.
        rest_zero_mmhg=Tolerance(
            loop.pressure_zero_tolerance_mmhg, PlausibilitySettings.rest_zero_mmhg.duration_s
        ),
    )


class FluidController:
    def __init__(
        self,
        limits: LimitsConfig,
        loop: FluidLoopConfig,
        interlock: Interlock,
        clock: Clock,
        plausibility: PlausibilitySettings | None = None,
    ) -> None:
        self._limits = limits
        self._loop = loop
        self._interlock = interlock
        self._clock = clock
        self.setpoint = STOPPED
        self.primed = False
        self._estimator = ResistanceEstimator(
            sample_period_s=SAMPLE_PERIOD_S,
            line_time_constant_s=loop.line_time_constant_ms / 1000.0,
            min_flow_ml_min=limits.min_flow_for_resistance_ml_min,
            pressure_noise_mmhg=loop.pressure_noise_mmhg,
            rise_limit_mmhg_min_per_ml_per_s=limits.max_resistance_rise_mmhg_min_per_ml_per_s,
            nominal_resistance_mmhg_min_per_ml=loop.nominal_resistance_mmhg_min_per_ml,
        )
        self._supervision = StopSupervisor(
            limits,
            plausibility or plausibility_settings(loop),
            persistence_samples=loop.stop_persistence_samples,
            sample_period_s=SAMPLE_PERIOD_S,
        )
        self._recent_pressure: deque[float] = deque(maxlen=PRESSURE_MEAN_SAMPLES)
        self.last_sample_t_us: int | None = None
        self.last_sample_rx_s: float | None = None
        self.last_reading = ResistanceReading(None, None, 0.0, flow_steady=False)
        # What the pump is doing, as far as the host has told it and been acknowledged.
        self.applied_flow_ml_min = 0.0
        self.pump_running = False
        self._generation = 0
        # Volumes: the current run (host integral vs pump report), and completed runs by kind.
        self._run_is_contrast = False
        self._run_host_ul = 0.0
        self._run_pump_ul = 0.0
        self.saline_done_ul = 0.0
        self.contrast_done_ul = 0.0
        self._pressure_integral = 0.0
        self._relief_pending = False
        self._wake = asyncio.Event()
        self._last_rate_change_s = 0.0
        self._next_poll_s = 0.0
        self.polling_paused = False
        """Set by the self-test while it lets the pump's safe-mode timeout run out."""
        self.last_stop: StopEvent | None = None
        interlock.add_stop_listener(self._on_stop)
        interlock.fluid_facts = self.fluid_facts

    # -- commands (validated here, carried out by run_actuation) ----------------------------

    def irrigate(self, flow_ml_min: float) -> None:
        self._check_value(
            "flow_ml_min",
            flow_ml_min,
            self._limits.min_flow_for_resistance_ml_min,
            self._limits.max_flow_ml_min,
            "mL/min",
        )
        self._start(Setpoint(FluidMode.IRRIGATING, flow_ml_min=flow_ml_min), contrast=False)

    def hold_pressure(self, pressure_mmhg: float) -> None:
        self._check_value(
            "pressure_mmhg",
            pressure_mmhg,
            PRESSURE_MIN_MMHG,
            self._limits.irrigation_pressure_cap_mmhg,
            "mmHg",
        )
        self._start(Setpoint(FluidMode.HOLD_PRESSURE, pressure_mmhg=pressure_mmhg), contrast=False)

    def bolus(self, volume_ml: float, rate_ml_min: float) -> None:
        remaining_ml = self._limits.contrast_volume_cap_ml - self.contrast_ul / 1000.0
        self._check_value(
            "volume_ml",
            volume_ml,
            0.001,
            max(remaining_ml, 0.0),
            "mL",
            why="the contrast left under the cumulative cap",
        )
        # No slower than the resistance can be watched: below that flow pressure / flow means
        # nothing, and a bolus against a wall would only be stopped by its pressure cap.
        self._check_value(
            "rate_ml_min",
            rate_ml_min,
            self._limits.min_flow_for_resistance_ml_min,
            self._limits.bolus_max_rate_ml_min,
            "mL/min",
        )
        self._start(
            Setpoint(FluidMode.BOLUS, flow_ml_min=rate_ml_min, volume_ul=volume_ml * 1000.0),
            contrast=True,
        )

    def prime(self) -> None:
        self._start(
            Setpoint(
                FluidMode.PRIMING,
                flow_ml_min=self._loop.prime_rate_ml_min,
                volume_ul=self._loop.prime_volume_ul,
            ),
            contrast=False,
        )

    def stop(self) -> None:
        """The operator's stop: immediate, never refused, does not latch."""
        if self.setpoint.mode is FluidMode.FAULT:
            return
        self._interlock.trip(StopCause.OPERATOR, "stopped by operator", mode=self.setpoint.mode)

    def sample_stream_restarted(self) -> None:
        """The I/O board's link is opening: its samples start a new stream (BoardDevice)."""
        self._supervision.sample_stream_restarted()

    async def reset(self) -> StopEvent | None:
        """Clear a latched fault. The rig comes back STOPPED at zero flow, never where it was."""
        cleared = await self._interlock.reset()
        if cleared is not None:
            self._supervision.fault_reset()
        if self.setpoint.mode is FluidMode.FAULT:
            self.setpoint = STOPPED
        self._wake.set()
        return cleared

    def _check_value(
        self,
        name: str,
        value: float,
        low: float,
        high: float,
        unit: str,
        why: str = "the profile's limits",
    ) -> None:
        if not (low <= value <= high):
            raise CommandRejectedError(
                f"{name} = {value:g}: expected {low:g} to {high:g} {unit} ({why})"
            )

    def fluid_facts(self) -> FluidFacts:
        limits = self._limits
        age_s = (
            None
            if self.last_sample_rx_s is None
            else self._clock.monotonic() - self.last_sample_rx_s
        )
        return FluidFacts(
            pressure_fresh=age_s is not None and age_s <= STALE_AFTER_S,
            line_primed=self.primed,
            saline_under_cap=self.saline_ul < limits.saline_volume_cap_ml * 1000.0,
            contrast_under_cap=self.contrast_ul < limits.contrast_volume_cap_ml * 1000.0,
        )

    def _start(self, setpoint: Setpoint, *, contrast: bool) -> None:
        self._interlock.require(MODE_ACTIONS[setpoint.mode])
        # An accepted run counts from its acceptance, not from the pump starting: otherwise a
        # command in the few milliseconds before actuation would silently replace one the rig
        # has already acknowledged (a bolus over an accepted hold, say).
        current = self.setpoint.mode
        if self.pump_running or current in MOTION_MODES:
            running_contrast = (
                self._run_is_contrast if self.pump_running else current is FluidMode.BOLUS
            )
            if contrast != running_contrast:
                raise StateConflictError(
                    f"cannot switch from {current} to {setpoint.mode} while the pump runs: "
                    "stop first"
                )
            if setpoint.volume_ul is not None or current in (FluidMode.BOLUS, FluidMode.PRIMING):
                raise StateConflictError(f"{current} in progress: stop first")
        self._pressure_integral = (
            setpoint.pressure_mmhg / PRESSURE_ASSUMED_RESISTANCE_MMHG_MIN_PER_ML
        )
        self.setpoint = setpoint
        self._wake.set()

    # -- the hot path ---------------------------------------------------------------------

    def on_sample(
        self, t_us: int, pressure_mmhg: float, rx_time_s: float, sample_counter: int
    ) -> None:
        try:
            self._handle_sample(t_us, pressure_mmhg, sample_counter)
        except Exception as exc:
            self._sample_handling_failed(exc)
            return
        # Fresh only once handled: a sample the supervision could not judge does not count.
        self.last_sample_rx_s = rx_time_s

    def _sample_handling_failed(self, exc: Exception) -> None:
        """A bug in the estimator or a supervisor: supervision is blind, so fail closed."""
        latched = self._interlock.latched
        if latched is not None and latched.cause is StopCause.INTERNAL_FAULT:
            return  # stopped and latched already; one report, not one per sample
        log.exception("pressure sample handling failed: the pump is stopped")
        self._interlock.trip(
            StopCause.INTERNAL_FAULT,
            f"pressure sample handling raised {type(exc).__name__}: {exc}",
            mode=self.setpoint.mode,
            figures={"subsystem": "fluid.on_sample", "exception": repr(exc)[:200]},
        )

    def _handle_sample(self, t_us: int, pressure_mmhg: float, sample_counter: int) -> None:
        previous_t_us = self.last_sample_t_us
        self.last_sample_t_us = t_us
        self._recent_pressure.append(pressure_mmhg)
        flow = self.applied_flow_ml_min if self.pump_running else 0.0
        if previous_t_us is not None and self.pump_running:
            self._run_host_ul += flow * 1000.0 / 60.0 * (t_us - previous_t_us) / 1e6
        reading = self._estimator.update(t_us / 1e6, pressure_mmhg, flow)
        self.last_reading = reading
        self._supervise(t_us, pressure_mmhg, sample_counter, flow, reading)

    def _supervise(
        self,
        t_us: int,
        pressure_mmhg: float,
        sample_counter: int,
        flow_ml_min: float,
        reading: ResistanceReading,
    ) -> None:
        moving = self.pump_running and self.setpoint.mode in MOTION_MODES
        stop = self._supervision.on_sample(
            t_us,
            pressure_mmhg,
            sample_counter,
            reading,
            flow_ml_min=flow_ml_min,
            pump_running=self.pump_running,
            moving=moving,
            bolus=self.setpoint.mode is FluidMode.BOLUS,
            zero_trusted=self._interlock.state in ZERO_TRUSTED_STATES,
            saline_ul=self.saline_ul,
            contrast_ul=self.contrast_ul,
        )
        if stop is not None:
            self._stop(stop)
        elif (
            moving
            and self.setpoint.volume_ul is not None
            and self.run_volume_ul >= self.setpoint.volume_ul
        ):
            self._complete()

    def _stop(self, stop: Stop) -> None:
        """A supervisor's stop, carried out by the interlock."""
        if stop.cut_power:
            self._interlock.cut_pump_power(
                stop.cause, stop.message, mode=self.setpoint.mode, figures=stop.figures
            )
        else:
            self._interlock.trip(
                stop.cause,
                stop.message,
                mode=self.setpoint.mode,
                figures=stop.figures,
                trigger_sample_t_us=stop.trigger_sample_t_us,
            )

    def _complete(self) -> None:
        mode = self.setpoint.mode
        if mode is FluidMode.PRIMING:
            self.primed = True
        self._interlock.trip(
            StopCause.COMPLETED,
            f"{mode} complete: {self.run_volume_ul:.0f} uL delivered",
            mode=mode,
            figures={"volume_ul": round(self.run_volume_ul, 1)},
        )

    def check_freshness(self, now_s: float) -> None:
        """Called on a timer: the samples themselves cannot report that they stopped coming."""
        if not (self.pump_running and self.setpoint.mode in MOTION_MODES):
            return
        stop = self._supervision.check_freshness(now_s, self.last_sample_rx_s)
        if stop is not None:
            self._stop(stop)

    # -- every stop, from anywhere, comes through here ---------------------------------------

    def _on_stop(self, event: StopEvent) -> None:
        self._generation += 1
        self.pump_running = False
        self.applied_flow_ml_min = 0.0
        self._pressure_integral = 0.0
        self._supervision.pump_stopped(event.cause, self._clock.monotonic())
        self.setpoint = Setpoint(FluidMode.FAULT) if event.latched else STOPPED
        self._relief_pending = event.cause in _RELIEVABLE and self._limits.relief_withdraw_ul > 0
        if self._relief_pending:
            self._interlock.arm_relief()
        self.last_stop = event
        self._wake.set()

    # -- volumes ----------------------------------------------------------------------------

    @property
    def run_volume_ul(self) -> float:
        return max(self._run_host_ul, self._run_pump_ul)

    @property
    def saline_ul(self) -> float:
        return self.saline_done_ul + (0.0 if self._run_is_contrast else self.run_volume_ul)

    @property
    def contrast_ul(self) -> float:
        return self.contrast_done_ul + (self.run_volume_ul if self._run_is_contrast else 0.0)

    def on_dispensed(self, reading: PumpReading) -> None:
        """The pump's own count for the current run (cleared at every start), and its status:
        the stop supervisor judges whether the pump obeys (rig/fluid/supervision.py)."""
        self._run_pump_ul = reading.infused_ml * 1000.0
        now_s = self._clock.monotonic()
        t_us = self.last_sample_t_us if self.last_sample_t_us is not None else int(now_s * 1e6)
        stop = self._supervision.on_dispensed(
            now_s,
            t_us,
            pump_ul=self._run_pump_ul,
            host_ul=self._run_host_ul,
            infusing=reading.infusing,
            pump_running=self.pump_running,
        )
        if stop is not None:
            self._stop(stop)

    def _begin_run(self, contrast: bool) -> None:
        if self._run_is_contrast:
            self.contrast_done_ul += self.run_volume_ul
        else:
            self.saline_done_ul += self.run_volume_ul
        self._run_is_contrast = contrast
        self._run_host_ul = 0.0
        self._run_pump_ul = 0.0
        self._supervision.run_started()

    # -- setpoint laws ----------------------------------------------------------------------

    @property
    def mean_pressure_mmhg(self) -> float | None:
        if not self._recent_pressure:
            return None
        return sum(self._recent_pressure) / len(self._recent_pressure)

    def target_flow_ml_min(self, dt_s: float = ACTUATION_TICK_S) -> float:
        setpoint = self.setpoint
        pressure = self.mean_pressure_mmhg or 0.0
        if setpoint.mode is FluidMode.IRRIGATING:
            # Back off linearly from backoff_start to the cap; keep a trickle so the resistance
            # stays observable (a stopped pump would blind the supervision).
            start, cap = self._limits.backoff_start_mmhg, self._limits.irrigation_pressure_cap_mmhg
            fraction = min(1.0, max(0.1, (cap - pressure) / (cap - start)))
            return setpoint.flow_ml_min * fraction
        if setpoint.mode is FluidMode.HOLD_PRESSURE:
            error = setpoint.pressure_mmhg - pressure
            unclamped = PRESSURE_KP_ML_MIN_PER_MMHG * error + self._pressure_integral
            high = self._limits.max_flow_ml_min
            low = self._limits.min_flow_for_resistance_ml_min
            if (
                low < unclamped < high
                or (unclamped <= low and error > 0)
                or (unclamped >= high and error < 0)
            ):
                self._pressure_integral += PRESSURE_KI_ML_MIN_PER_MMHG_S * error * dt_s
            return min(high, max(low, unclamped))
        if setpoint.mode in (FluidMode.BOLUS, FluidMode.PRIMING):
            return setpoint.flow_ml_min
        return 0.0

    # -- the actuation task -----------------------------------------------------------------

    async def run_actuation(self, read_dispensed_ml: DispensedReader) -> None:
        """Apply the mode to the pump and poll its dispensed volume; runs for the daemon's life."""
        while True:
            try:
                async with asyncio.timeout(ACTUATION_TICK_S):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            await self.actuate_once(read_dispensed_ml)

    async def actuate_once(self, read_dispensed_ml: DispensedReader) -> None:
        """One actuation step: check freshness, start/adjust/relieve the pump, poll its volume."""
        # A command wakes this step in the loop pass after the one that handled it, ahead of
        # that pass's reads: after a long handling, samples already in the port's buffer would
        # look late (CI: "no pressure sample for 108 ms" right after a bolus command, on a
        # healthy stream). Two passes let every pending read land before the age is judged. A
        # loop that is really blocked is the loop-stall guard's to catch.
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        now_s = self._clock.monotonic()
        self.check_freshness(now_s)
        try:
            if self._relief_pending:
                self._relief_pending = False
                volume_ul = self.relief_volume_ul()
                if volume_ul >= RELIEF_MIN_UL:
                    await self._interlock.relief_withdraw(volume_ul, RELIEF_RATE_ML_MIN)
            elif self.setpoint.mode in MOTION_MODES and not self.pump_running:
                await self._start_pump()
                self._last_rate_change_s = now_s
            elif (
                self.pump_running
                and now_s - self._last_rate_change_s
                >= self._loop.rate_update_min_interval_ms / 1000.0
            ):
                target = self.target_flow_ml_min(ACTUATION_TICK_S)
                if (
                    abs(target - self.applied_flow_ml_min)
                    > RATE_CHANGE_TOLERANCE * self.applied_flow_ml_min
                ):
                    generation = self._generation
                    await self._interlock.set_rate(MODE_ACTIONS[self.setpoint.mode], target)
                    if generation == self._generation:
                        self.applied_flow_ml_min = target
                    self._last_rate_change_s = now_s
            if (
                now_s >= self._next_poll_s
                and self._interlock.pump_link_up
                and not self.polling_paused
            ):
                self._next_poll_s = now_s + 1.0 / self._loop.pump_poll_hz
                self.on_dispensed(await read_dispensed_ml())
        except MotionCancelledError as exc:
            log.info("%s", exc.reason)  # the stop that cancelled it has reset the setpoint
        except InterlockDeniedError as exc:
            self._refused(exc)
        except (TimeoutError, ConnectionError) as exc:
            self._pump_failed(StopCause.PUMP_LINK_LOST, f"pump did not answer: {exc!r}")
        except PumpFaultError as exc:
            self._pump_failed(StopCause.PUMP_ALARM, f"pump reported: {exc}")

    def relief_volume_ul(self) -> float:
        """What the line holds above the relief target, capped: the volume a relief takes back.

        The line's compliance is the profile's time constant over its nominal resistance (the
        same C the line model uses); it is the compliance of line and duct together, so taking
        back C x (P - target) leaves the duct at about the target once the line is released.
        """
        limits = self._limits
        pressure = self.mean_pressure_mmhg
        if pressure is None:
            return 0.0
        loop = self._loop
        compliance_ul_per_mmhg = (
            loop.line_time_constant_ms / 60.0 / loop.nominal_resistance_mmhg_min_per_ml
        )
        excess_ul = compliance_ul_per_mmhg * (pressure - limits.relief_target_mmhg)
        return min(limits.relief_withdraw_ul, max(0.0, excess_ul))

    async def _start_pump(self) -> None:
        setpoint = self.setpoint
        contrast = setpoint.mode is FluidMode.BOLUS
        self._begin_run(contrast)
        rate = self.target_flow_ml_min()
        generation = self._generation
        await self._interlock.infuse(MODE_ACTIONS[setpoint.mode], rate, setpoint.volume_ul)
        if generation == self._generation:
            self.applied_flow_ml_min = rate
            self.pump_running = True
            self._supervision.pump_started()

    def _refused(self, exc: InterlockDeniedError) -> None:
        """A command accepted, then refused when it came to move the pump: it is gone. The
        refusal was recorded once by the interlock; nothing retries it."""
        log.info("actuation refused: %s", exc.reason)
        if self.setpoint.mode in MOTION_MODES and not self.pump_running:
            self.setpoint = STOPPED

    def _pump_failed(self, cause: StopCause, message: str) -> None:
        if self.setpoint.mode in MOTION_MODES or self.pump_running:
            self._interlock.trip(cause, message, mode=self.setpoint.mode)
        else:
            log.warning("%s (pump idle)", message)


_RELIEVABLE = frozenset(
    {
        StopCause.RESISTANCE_LIMIT,
        StopCause.RESISTANCE_RISE,
        StopCause.PRESSURE_LIMIT,
        StopCause.BOLUS_PRESSURE_CAP,
    }
)
