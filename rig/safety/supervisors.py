"""Plausibility supervisors: redundant signals compared with a distance *and* a duration tolerance.

After Klipper's `verify_heater` (the heater must move the temperature the way the power says, or
the printer shuts down after a grace period) and dVRK's encoder/potentiometer check (two sensors of
one joint must agree within a distance, for longer than a timeout, before it is a fault). A
disagreement becomes a fault only when it is larger than its distance for at least its duration:
the distance ignores noise, the duration ignores transients the physics explains (a flow step,
one glitchy sample).

Every check is a small class with `update(...) -> Finding | None` and `reset()`. It returns a
`Finding` once, on the sample where the disagreement has lasted its duration, and stays quiet
while that disagreement continues; when the disagreement ends its state resets and it can fire
again. `PlausibilitySupervisor` runs them all on every pressure sample (500 Hz) and on every
dispensed-volume poll (about 4 Hz).

Pure: no I/O, no asyncio, no clock. Time is the board's microsecond clock as the driver extends
it (drivers/ioboard/codec.py: the raw ticks_us wraps every 2^30 us), one unwrapped time line: every
`t_us` a check takes or reports is on it, and durations are plain differences. A finding's
`first_t_us` becomes the stop's trigger time, from which the stop latency is taken against the
host's clock; a time wrapped here would put it on another line (a sample-gap stop at t = 10368 s
once reported 8590 s, two u32 wraps, from detection to stop). See docs/safety/supervisors.md for what each check
catches and what it cannot.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from drivers.ioboard.codec import PRESSURE_RAIL_HIGH_CMMHG, PRESSURE_RAIL_LOW_CMMHG

FigureValue = float | int | str | None

_COUNTER_MASK = 0xFFFF
"""The board's sample counter is u16."""

RAIL_HIGH_MMHG = PRESSURE_RAIL_HIGH_CMMHG / 100
"""327.67 mmHg: the decoded value of the i16 code 0x7FFF, an open bridge (disconnected)."""
RAIL_LOW_MMHG = PRESSURE_RAIL_LOW_CMMHG / 100
"""-327.68 mmHg: the decoded value of the code -0x8000, a shorted bridge."""


@dataclass(frozen=True)
class Tolerance:
    distance: float
    """In the check's unit, named in the field that holds the Tolerance."""
    duration_s: float
    """How long the disagreement must last before it is a fault."""

    def __post_init__(self) -> None:
        if not (0.0 <= self.distance < math.inf):
            raise ValueError(f"Tolerance.distance = {self.distance}: expected a finite value >= 0")
        if not (0.0 <= self.duration_s < math.inf):
            raise ValueError(
                f"Tolerance.duration_s = {self.duration_s}: expected a finite value >= 0"
            )

    @property
    def duration_us(self) -> int:
        return round(self.duration_s * 1e6)


@dataclass(frozen=True)
class Finding:
    check: str
    """"pressure_model", "dispensed_volume", "sensor_stuck", "pressure_range", "sample_gap",
    "rest_zero"."""
    message: str
    """For an operator: what disagreed, by how much, for how long, against which tolerance."""
    figures: dict[str, FigureValue]
    first_t_us: int
    """Board timestamp of the first sample of the disagreement that became a fault."""


@dataclass(frozen=True)
class PlausibilitySettings:
    """Every tolerance of the plausibility checks, with its default and the reason for it.

    Field names carry the unit of the distance (`_mmhg`, `_ul`, `_fraction`). The defaults are the
    simulator's rig (docs/simulator.md); `rig.fluid.controller.plausibility_settings` replaces
    those the profile sets (the line time constant and model, the rest-zero distance).
    """

    sample_period_s: float = 0.002
    """The I/O board samples pressure at 500 Hz (docs/protocols/ioboard.md)."""
    line_time_constant_s: float = 0.3
    """R·C of line and duct: 17 mmHg·min/mL x 0.33 uL/mmHg ≈ 0.3 s (fluid.line_time_constant_ms)."""
    nominal_resistance_mmhg_min_per_ml: float = 17.0
    """Until a resistance is learned, the model predicts with this: the simulator's tip (15) plus
    tubing (2). On a real rig, the resistance measured on the bench with a nominal duct phantom."""
    min_flow_ml_min: float = 0.1
    """Below this the pressure model is not checked: at 0.1 mL/min the nominal duct makes 1.7 mmHg,
    less than the model's distance. Same as limits.min_flow_for_resistance_ml_min."""
    steady_after_time_constants: float = 3.0
    """The resistance is learned only once the flow has been unchanged for 3 time constants (95 %
    of the step settled), as the resistance estimator trusts its rise rate."""
    resistance_learn_window_s: float = 0.5
    """The learned resistance is the mean of P/Q over blocks of 0.5 s of steady, agreeing flow:
    250 samples average the 0.2 mmHg noise down to 0.013 mmHg, and a block is short enough to
    follow the tip moving slowly through the duct."""
    resistance_floor_fraction: float = 0.25
    """Until it has learned the duct's resistance, the line model knows only that a healthy
    duct's is at least this fraction of the nominal (4.25 of 17 mmHg·min/mL, about twice the
    tubing's own): a line open to air or a pump that does not move reads less. Ducts vary far
    more than the model's distance allows at 1 mL/min (3 mmHg is 3 mmHg·min/mL), so judging an
    unlearned duct against the nominal one stopped every duct a little wider or tighter."""
    pressure_noise_mmhg: float = 0.2
    """The transducer's noise (fluid.pressure_noise_mmhg): a resistance learned from a block of
    n samples at flow Q carries noise / sqrt(n) / Q."""
    learned_sigma_margin: float = 6.0
    """The learned resistance's uncertainty widens the model's distance by this many standard
    deviations times the flow: learned at 0.1 mL/min (0.13 mmHg·min/mL), then applied at
    3 mL/min, that is 2.3 mmHg more."""
    learn_settled_fraction: float = 0.01
    """A block is learned only once its two halves agree (the line has settled): within their
    noise, or within 1 % of the resistance. 1 % is 0.17 mmHg·min/mL on the nominal duct, while a
    tip moving slowly into a tighter branch (15 -> 22 over 30 s) changes it 0.06 per half-block;
    a tight duct still filling (tau 0.7 s, 2 s after the start) changes it 2 % per half-block."""
    pressure_model_mmhg: Tolerance = Tolerance(distance=3.0, duration_s=0.3)
    """3 mmHg is 15 sigma of the 0.2 mmHg noise (noise alone never reaches it) and below the
    5.1 mmHg that a stalled pump leaves unexplained at 0.3 mL/min on the nominal duct. 0.3 s is
    longer than any transient the model does not capture: the tubing drop (Q·2 mmHg·min/mL) that
    appears at once on a flow step decays below 3 mmHg within τ·ln(2) = 0.21 s even for a 0->3
    mL/min start; and it lets the resistance stops (persistence 2 samples, rise stop about 60 ms
    after a wall) report a wall first."""
    dispensed_volume_ul: Tolerance = Tolerance(distance=20.0, duration_s=0.5)
    """20 uL: far above the poll latency (50 uL/s at 3 mL/min x ~50 ms = 2.5 uL) and the pump's
    display rounding; a runaway at 3 mL/min is found within 20/50 + 0.5 ≈ 0.9 s, about 45 uL,
    a tenth of the 500 uL post-release bolus limit (limits.post_release_bolus_max_ul, ECRI).
    0.5 s is two poll periods at 4 Hz: one late reply is not a fault."""
    dispensed_volume_fraction: float = 0.05
    """Large volumes are compared relatively: host and pump compute the volume from the same
    syringe diameter, so they agree to rounding (4 significant digits, 0.1 %) plus the steps lost
    at start and rate changes; 5 % keeps those out and still catches a pump at half or double
    speed."""
    sensor_stuck_mmhg: Tolerance = Tolerance(distance=0.005, duration_s=0.05)
    """Readings closer than half of the board's 0.01 mmHg count are the same code (a whole count
    would call two adjacent codes equal after float rounding: 12.35 - 12.34 < 0.01). With 0.2 mmHg
    of noise two consecutive readings share a code 1.4 % of the time, 25 in a row (0.05 s) never
    (1e-44). An occlusion at 1 mL/min raises pressure 50 mmHg/s: a stuck reading hides at most
    2.5 mmHg before this fires."""
    pressure_range_mmhg: Tolerance = Tolerance(distance=0.0, duration_s=0.004)
    """Distance: margin beyond the transducer's range; zero, the range already is the transducer's
    rated span. 4 ms (3 samples) ignores one glitched frame and still reports a disconnected
    transducer 12 times sooner than the 100 ms stale-data stop would notice anything."""
    transducer_min_mmhg: float = -50.0
    transducer_max_mmhg: float = 300.0
    """The transducer's rated span (-50..300 mmHg); outside it the reading means nothing."""
    sample_gap_max_consecutive: int = 10
    """More than 10 samples (20 ms) lost in a row is a fault: at the worst rise the stops can meet
    (occlusion at 3 mL/min, 150 mmHg/s) 20 ms of blindness lets pressure climb 3 mmHg past a
    threshold unseen. Longer silences are also caught live by the 100 ms stale-data stop."""
    sample_loss_fraction: Tolerance = Tolerance(distance=0.02, duration_s=1.0)
    """More than 2 % of the samples of a 1 s window (11 of 500) lost: USB has its own CRC and
    retries, so losses mean overruns or a failing cable; a link that loses one frame in fifty is
    failing (H11) even when no single gap is long."""

    rest_zero_mmhg: Tolerance = Tolerance(distance=5.0, duration_s=1.0)
    """With the pump stopped and the line settled, the duct has drained through the outflow
    around the tip and the transducer must read the zero the self-test took, within the same
    5 mmHg as that self-test (fluid.pressure_zero_tolerance_mmhg; the controller passes the
    profile's value). Beyond it the transducer has drifted or moved, or the duct holds trapped
    pressure: either way the limits no longer apply to the duct's real pressure (H13). 1 s of the
    0.5 s window mean (noise 0.013 mmHg) is not noise; it only keeps a bumped line from faulting."""
    rest_settle_time_constants: float = 10.0
    """The rest check starts 10 line time constants after the pump stops (3 s): a duct at 15 mmHg
    has drained to 7e-4 mmHg by then. A real duct whose time constant is longer needs a longer
    line_time_constant_s, or pressure still draining reads as drift."""
    rest_window_s: float = 0.5
    """The rest reading is the mean of the last 0.5 s: 250 samples average the 0.2 mmHg noise
    down to 0.013 mmHg, and the 1 s duration then ignores a bump of the line, not noise."""

    def __post_init__(self) -> None:
        positive = {
            "sample_period_s": self.sample_period_s,
            "line_time_constant_s": self.line_time_constant_s,
            "nominal_resistance_mmhg_min_per_ml": self.nominal_resistance_mmhg_min_per_ml,
            "min_flow_ml_min": self.min_flow_ml_min,
            "resistance_learn_window_s": self.resistance_learn_window_s,
            "rest_settle_time_constants": self.rest_settle_time_constants,
            "rest_window_s": self.rest_window_s,
            "resistance_floor_fraction": self.resistance_floor_fraction,
            "pressure_noise_mmhg": self.pressure_noise_mmhg,
        }
        for name, value in positive.items():
            if not (0.0 < value < math.inf):
                raise ValueError(
                    f"PlausibilitySettings.{name} = {value}: expected a finite value > 0"
                )
        if not (0.0 <= self.steady_after_time_constants < math.inf):
            raise ValueError(
                "PlausibilitySettings.steady_after_time_constants = "
                f"{self.steady_after_time_constants}: expected a finite value >= 0"
            )
        if not (0.0 <= self.learn_settled_fraction < math.inf):
            raise ValueError(
                "PlausibilitySettings.learn_settled_fraction = "
                f"{self.learn_settled_fraction}: expected a finite value >= 0"
            )
        if not (0.0 <= self.learned_sigma_margin < math.inf):
            raise ValueError(
                "PlausibilitySettings.learned_sigma_margin = "
                f"{self.learned_sigma_margin}: expected a finite value >= 0"
            )
        if not (0.0 <= self.dispensed_volume_fraction < math.inf):
            raise ValueError(
                "PlausibilitySettings.dispensed_volume_fraction = "
                f"{self.dispensed_volume_fraction}: expected a finite value >= 0"
            )
        if not self.transducer_min_mmhg < self.transducer_max_mmhg:
            raise ValueError(
                f"PlausibilitySettings.transducer_min_mmhg = {self.transducer_min_mmhg}: "
                f"expected below transducer_max_mmhg = {self.transducer_max_mmhg}"
            )
        if self.sample_gap_max_consecutive < 0:
            raise ValueError(
                "PlausibilitySettings.sample_gap_max_consecutive = "
                f"{self.sample_gap_max_consecutive}: expected >= 0"
            )
        if not self.sample_loss_fraction.distance < 1.0:
            raise ValueError(
                "PlausibilitySettings.sample_loss_fraction.distance = "
                f"{self.sample_loss_fraction.distance}: expected a fraction below 1"
            )
        if round(self.sample_loss_fraction.duration_s / self.sample_period_s) < 1:
            raise ValueError(
                "PlausibilitySettings.sample_loss_fraction.duration_s = "
                f"{self.sample_loss_fraction.duration_s}: expected at least one sample period"
            )


class _Lasting:
    """A disagreement timer: a condition that must hold for `duration_us` of board time.

    The time-based sibling of rig.fluid.supervision.Persistence: it keeps the timestamp of the
    first sample of the run, reports once when the run has lasted its duration, and forgets the
    run as soon as the condition stops holding.
    """

    __slots__ = ("duration_us", "fired", "first_t_us")

    def __init__(self, duration_us: int) -> None:
        self.duration_us = duration_us
        self.first_t_us: int | None = None
        self.fired = False

    def update(self, condition: bool, t_us: int) -> bool:
        """Feed one sample; True exactly once, on the sample where the run reaches its duration."""
        if not condition:
            self.first_t_us = None
            self.fired = False
            return False
        first = self.first_t_us
        if first is None or t_us < first:
            # A clock that stepped back (the driver re-anchors it when the board's link reopens)
            # restarts the run: its length is unknown, it is not taken as a long one.
            self.first_t_us = first = t_us
        if self.fired or t_us - first < self.duration_us:
            return False
        self.fired = True
        return True

    def elapsed_s(self, t_us: int) -> float:
        return 0.0 if self.first_t_us is None else (t_us - self.first_t_us) / 1e6

    def clear(self) -> None:
        self.first_t_us = None
        self.fired = False


def _g(value: float) -> str:
    return f"{value:.3g}"


class PressureModelCheck:
    """Measured pressure vs what a first-order model of the line predicts from the pump flow.

    P_pred = R_ref · Q_lag, with Q_lag the commanded flow through a first-order lag with the
    line's time constant R_ref·C (C, the line's compliance, is the profile's time constant over
    its nominal resistance): for a constant R_ref this is exactly "P_pred follows R_ref·Q with the
    line time constant", and when R_ref is re-learned the prediction moves with it instead of
    lagging behind a value the line has long reached.

    The model judges the pressure only as far as it knows the duct:

    - Until it has learned this duct's resistance, it knows only that a healthy duct's is not
      below a floor (a fraction of the nominal: a line open to air, or a pump that does not
      move, reads less). It then checks one side: pressure more than the distance below
      R_floor · Q_lag. A duct tighter than the nominal one is no fault of the line model's (the
      resistance stops own rising resistance), and one a little wider is not either.
    - Once the flow has been steady for a few time constants, R_ref is the mean of P/Q over each
      block of steady samples that agreed (learning stops during a disagreement, so a fault is
      never learned as the new normal; a block below the floor is not learned either). From
      then on both sides are checked, and the distance grows by the learned value's own
      uncertainty times the flow: a resistance learned from noisy samples at a low flow
      predicts a high flow less well.
    """

    CHECK = "pressure_model"

    def __init__(
        self,
        tolerance: Tolerance,
        *,
        sample_period_s: float,
        line_time_constant_s: float,
        nominal_resistance_mmhg_min_per_ml: float,
        min_flow_ml_min: float,
        steady_after_s: float,
        learn_window_s: float,
        floor_fraction: float,
        pressure_noise_mmhg: float,
        sigma_margin: float,
        settled_fraction: float,
    ) -> None:
        self.tolerance = tolerance
        self._distance = tolerance.distance
        self._lasting = _Lasting(tolerance.duration_us)
        self._period_us = round(sample_period_s * 1e6)
        self._compliance_us_per_r = line_time_constant_s * 1e6 / nominal_resistance_mmhg_min_per_ml
        self._nominal = nominal_resistance_mmhg_min_per_ml
        self.floor_mmhg_min_per_ml = floor_fraction * nominal_resistance_mmhg_min_per_ml
        self._min_flow = min_flow_ml_min
        self._steady_after_us = round(steady_after_s * 1e6)
        self._learn_samples = max(1, round(learn_window_s / sample_period_s))
        self._noise = pressure_noise_mmhg
        self._sigma_margin = sigma_margin
        self._settled_fraction = settled_fraction
        self.reset()

    def reset(self) -> None:
        self.resistance_mmhg_min_per_ml = self._nominal
        """The learned resistance; the nominal one (reported, not used) until then."""
        self.learned = False
        self.uncertainty_mmhg_min_per_ml = 0.0
        """The learned resistance's margin: sigma_margin standard deviations of its noise."""
        self.flow_lag_ml_min = 0.0
        self._last_t_us: int | None = None
        self._flow = 0.0
        self._flow_changed_t_us: int | None = None
        self._learn_total = 0.0
        self._learn_count = 0
        self._first_half_total = 0.0
        self._lasting.clear()
        self._set_model_resistance(self.floor_mmhg_min_per_ml)

    def _set_model_resistance(self, resistance: float) -> None:
        self._model_r = resistance
        self._tau_us = self._compliance_us_per_r * resistance
        # The lag factor for the usual sample spacing, computed once per model: exp() per sample
        # is the most expensive thing here, and the spacing is almost always exactly one period.
        self._alpha_period = -math.expm1(-self._period_us / self._tau_us)

    @property
    def predicted_mmhg(self) -> float:
        return self._model_r * self.flow_lag_ml_min

    def update(
        self, t_us: int, pressure_mmhg: float, flow_ml_min: float, pump_running: bool
    ) -> Finding | None:
        flow = flow_ml_min if pump_running else 0.0
        last = self._last_t_us
        self._last_t_us = t_us
        if last is None:
            alpha = self._alpha_period
        else:
            dt_us = max(t_us - last, 0)  # a clock that stepped back advances nothing
            alpha = (
                self._alpha_period
                if dt_us == self._period_us
                else -math.expm1(-dt_us / self._tau_us)
            )
        if flow != self._flow:
            if self._flow < self._min_flow <= flow:
                # A run starts: the model starts from the pressure the line holds now, not from
                # its own idea of how the line drained since the last run (which it cannot know:
                # a wall, an occlusion or a scenario cleared meanwhile changes the drain). Then
                # it predicts the exact RC response from there; a pump that does not move is
                # still found, as the line then drains while the model climbs.
                self.flow_lag_ml_min = pressure_mmhg / self._model_r
            # Any change of the command restarts the steady clock: learning a resistance from a
            # line still filling or draining would learn the transient, not the duct.
            self._flow = flow
            self._flow_changed_t_us = t_us
            self._learn_total = 0.0
            self._learn_count = 0
        self.flow_lag_ml_min += alpha * (flow - self.flow_lag_ml_min)

        if flow < self._min_flow:
            self._lasting.clear()
            return None
        predicted = self._model_r * self.flow_lag_ml_min
        error = pressure_mmhg - predicted
        if self.learned:
            limit = self._distance + self.flow_lag_ml_min * self.uncertainty_mmhg_min_per_ml
            disagree = abs(error) > limit
        else:
            limit = self._distance
            disagree = error < -limit
        if self._lasting.update(disagree, t_us):
            return self._finding(t_us, pressure_mmhg, predicted, error, limit)
        if not disagree:
            changed = self._flow_changed_t_us
            if changed is not None and t_us < changed:
                self._flow_changed_t_us = changed = t_us  # the clock stepped back
            if changed is None or t_us - changed >= self._steady_after_us:
                self._learn(pressure_mmhg / flow, flow)
        else:
            # A block that saw a disagreement is not a steady, agreeing block.
            self._learn_total = 0.0
            self._learn_count = 0
        return None

    def _learn(self, resistance: float, flow_ml_min: float) -> None:
        self._learn_total += resistance
        self._learn_count += 1
        if self._learn_count == self._learn_samples // 2:
            self._first_half_total = self._learn_total
        if self._learn_count >= self._learn_samples:
            mean = self._learn_total / self._learn_count
            if mean >= self.floor_mmhg_min_per_ml and self._settled(mean, flow_ml_min):
                self.resistance_mmhg_min_per_ml = mean
                self.uncertainty_mmhg_min_per_ml = (
                    self._sigma_margin * self._noise / math.sqrt(self._learn_count) / flow_ml_min
                )
                self.learned = True
                self._set_model_resistance(mean)
            self._learn_total = 0.0
            self._learn_count = 0

    def _settled(self, mean: float, flow_ml_min: float) -> bool:
        """Whether the block's two halves agree: the line has stopped filling or draining.

        A duct tighter than the profile's nominal one fills more slowly than the steady time
        (three nominal time constants) assumes; learning while it still fills learns too low a
        resistance, and the line model then calls the rest of the fill implausible. The halves
        must agree within their noise (sigma_margin standard deviations) or within
        `settled_fraction` of the resistance, whichever is wider: a duct that wanders slowly as
        the tip moves is still learned."""
        half = self._learn_samples // 2
        if half < 1:
            return True
        first = self._first_half_total / half
        second = (self._learn_total - self._first_half_total) / (self._learn_count - half)
        noise = self._noise / flow_ml_min * math.sqrt(2.0 / half)
        allowed = max(self._sigma_margin * noise, self._settled_fraction * mean)
        return abs(second - first) <= allowed

    def _finding(
        self, t_us: int, pressure: float, predicted: float, error: float, limit: float
    ) -> Finding:
        first = self._lasting.first_t_us
        assert first is not None
        lasted_s = (t_us - first) / 1e6
        side = "above" if error > 0 else "below"
        tol = self.tolerance
        if self.learned:
            basis = "learned"
            what = f"learned resistance {self._model_r:.2f} mmHg·min/mL"
        else:
            basis = "floor"
            what = (
                f"lowest resistance a healthy duct has, {self._model_r:.2f} mmHg·min/mL, "
                "before this duct's is learned"
            )
        return Finding(
            check=self.CHECK,
            message=(
                f"pressure {pressure:.2f} mmHg is {abs(error):.2f} mmHg {side} the "
                f"{predicted:.2f} mmHg the line model predicts for {self._flow:g} mL/min "
                f"({what}), for {lasted_s * 1000:.0f} ms: tolerance {limit:.3g} mmHg "
                f"for {tol.duration_s * 1000:g} ms"
            ),
            figures={
                "pressure_mmhg": round(pressure, 2),
                "predicted_mmhg": round(predicted, 3),
                "difference_mmhg": round(error, 3),
                "flow_ml_min": self._flow,
                "resistance_mmhg_min_per_ml": round(self._model_r, 3),
                "resistance_basis": basis,
                "lasted_s": lasted_s,
                "distance_mmhg": round(limit, 3),
                "duration_s": tol.duration_s,
                "sample_t_us": t_us,
            },
            first_t_us=first,
        )


class DispensedVolumeCheck:
    """The pump's own dispensed count vs the integral of the flow the host commanded.

    Both are cumulative over the run and come from the caller on every dispensed poll. The limit
    is absolute for small volumes and relative for large ones: max(distance, fraction x commanded).
    """

    CHECK = "dispensed_volume"

    def __init__(self, tolerance: Tolerance, *, fraction: float) -> None:
        self.tolerance = tolerance
        self.fraction = fraction
        self._lasting = _Lasting(tolerance.duration_us)

    def reset(self) -> None:
        self._lasting.clear()

    def limit_ul(self, commanded_ul: float) -> float:
        return max(self.tolerance.distance, self.fraction * abs(commanded_ul))

    def update(self, t_us: int, dispensed_ul: float, commanded_ul: float) -> Finding | None:
        difference = dispensed_ul - commanded_ul
        limit = self.limit_ul(commanded_ul)
        if not self._lasting.update(abs(difference) > limit, t_us):
            return None
        first = self._lasting.first_t_us
        assert first is not None
        lasted_s = self._lasting.elapsed_s(t_us)
        what = "more than commanded (runaway)" if difference > 0 else "less than commanded (stall)"
        tol = self.tolerance
        return Finding(
            check=self.CHECK,
            message=(
                f"pump reports {dispensed_ul:.1f} uL dispensed, {abs(difference):.1f} uL {what} "
                f"({commanded_ul:.1f} uL), for {lasted_s:.2f} s: tolerance "
                f"max({tol.distance:g} uL, {self.fraction:.0%} of commanded) = {limit:.1f} uL "
                f"for {tol.duration_s:g} s"
            ),
            figures={
                "dispensed_ul": round(dispensed_ul, 2),
                "commanded_ul": round(commanded_ul, 2),
                "difference_ul": round(difference, 2),
                "limit_ul": round(limit, 2),
                "lasted_s": lasted_s,
                "distance_ul": tol.distance,
                "fraction": self.fraction,
                "duration_s": tol.duration_s,
                "poll_t_us": t_us,
            },
            first_t_us=first,
        )


class StuckSensorCheck:
    """A real transducer always shows noise: the same code for too long while flow runs is a
    frozen ADC, a dead amplifier or a reading that is no longer refreshed."""

    CHECK = "sensor_stuck"

    def __init__(self, tolerance: Tolerance) -> None:
        self.tolerance = tolerance
        self._distance = tolerance.distance
        self._lasting = _Lasting(tolerance.duration_us)
        self._reference: float | None = None
        self._reference_t_us = 0

    def reset(self) -> None:
        self._lasting.clear()
        self._reference = None

    def update(self, t_us: int, pressure_mmhg: float, pump_running: bool) -> Finding | None:
        if not pump_running:
            self.reset()
            return None
        reference = self._reference
        if (
            reference is None
            or abs(pressure_mmhg - reference) > self._distance
            or t_us < self._reference_t_us  # the clock stepped back: the run's length is unknown
        ):
            # The reading moved: a new run of identical readings starts at this sample.
            self._reference = pressure_mmhg
            self._reference_t_us = t_us
            self._lasting.clear()
            return None
        # The run began at the reference sample: its first sample is the one that kept repeating.
        lasting = self._lasting
        if lasting.first_t_us is None:
            lasting.first_t_us = self._reference_t_us
        if not lasting.update(True, t_us):
            return None
        lasted_s = lasting.elapsed_s(t_us)
        tol = self.tolerance
        return Finding(
            check=self.CHECK,
            message=(
                f"pressure reading stuck at {pressure_mmhg:.2f} mmHg (within {tol.distance:g} "
                f"mmHg) for {lasted_s * 1000:.0f} ms while the pump runs: a live transducer "
                f"shows noise; tolerance {tol.duration_s * 1000:g} ms"
            ),
            figures={
                "pressure_mmhg": round(pressure_mmhg, 2),
                "lasted_s": lasted_s,
                "distance_mmhg": tol.distance,
                "duration_s": tol.duration_s,
                "sample_t_us": t_us,
            },
            first_t_us=self._reference_t_us,
        )


class PressureRangeCheck:
    """Readings outside the transducer's rated span, or at a rail code (disconnected/shorted)."""

    CHECK = "pressure_range"

    def __init__(self, tolerance: Tolerance, *, min_mmhg: float, max_mmhg: float) -> None:
        self.tolerance = tolerance
        self.min_mmhg = min_mmhg
        self.max_mmhg = max_mmhg
        self._low = min_mmhg - tolerance.distance
        self._high = max_mmhg + tolerance.distance
        self._lasting = _Lasting(tolerance.duration_us)

    def reset(self) -> None:
        self._lasting.clear()

    def update(self, t_us: int, pressure_mmhg: float) -> Finding | None:
        outside = not (self._low <= pressure_mmhg <= self._high)  # NaN is outside too
        if not self._lasting.update(outside, t_us):
            return None
        first = self._lasting.first_t_us
        assert first is not None
        lasted_s = self._lasting.elapsed_s(t_us)
        code = round(pressure_mmhg * 100) if math.isfinite(pressure_mmhg) else None
        if code == PRESSURE_RAIL_HIGH_CMMHG:
            kind = "rail_high"
            what = f"at the positive rail code ({RAIL_HIGH_MMHG} mmHg): transducer disconnected"
        elif code == PRESSURE_RAIL_LOW_CMMHG:
            kind = "rail_low"
            what = f"at the negative rail code ({RAIL_LOW_MMHG} mmHg): transducer shorted"
        else:
            kind = "out_of_range"
            what = f"at {pressure_mmhg:.2f} mmHg, outside the transducer's range"
        tol = self.tolerance
        return Finding(
            check=self.CHECK,
            message=(
                f"pressure reading {what} ({self.min_mmhg:g}..{self.max_mmhg:g} mmHg, margin "
                f"{tol.distance:g} mmHg) for {lasted_s * 1000:.0f} ms: tolerance "
                f"{tol.duration_s * 1000:g} ms"
            ),
            figures={
                "pressure_mmhg": pressure_mmhg if math.isfinite(pressure_mmhg) else None,
                "kind": kind,
                "min_mmhg": self.min_mmhg,
                "max_mmhg": self.max_mmhg,
                "lasted_s": lasted_s,
                "distance_mmhg": tol.distance,
                "duration_s": tol.duration_s,
                "sample_t_us": t_us,
            },
            first_t_us=first,
        )


class SampleGapCheck:
    """Samples lost between board and host, from the board's u16 sample counter.

    Two limits: a single gap of more than `max_consecutive` samples, and more than the fraction
    `loss.distance` of the samples of a window of `loss.duration_s` (counted in sample slots:
    received plus lost). A repeated counter is a duplicate frame, not a loss, and is ignored.
    """

    CHECK = "sample_gap"

    def __init__(self, max_consecutive: int, loss: Tolerance, *, sample_period_s: float) -> None:
        self.max_consecutive = max_consecutive
        self.loss = loss
        self._period_us = round(sample_period_s * 1e6)
        self.window_samples = max(1, round(loss.duration_s / sample_period_s))
        self.max_lost_in_window = loss.distance * self.window_samples
        self._events: deque[list[int]] = deque()  # [first lost slot, lost count, first lost t_us]
        self.reset()

    def reset(self) -> None:
        self._last_counter: int | None = None
        self._last_t_us = 0
        self._slot = 0
        self._events.clear()
        self.lost_in_window = 0
        self._rate_fired = False

    def update(self, t_us: int, sample_counter: int) -> Finding | None:
        last = self._last_counter
        if last is None:
            self._last_counter = sample_counter
            self._last_t_us = t_us
            return None
        lost = (sample_counter - last - 1) & _COUNTER_MASK
        if lost == _COUNTER_MASK:
            return None  # the same counter again: a duplicate, nothing new was sampled
        self._last_counter = sample_counter
        previous_t_us = self._last_t_us
        self._last_t_us = t_us
        self._slot += lost + 1
        events = self._events
        if lost:
            # The first lost sample was taken one period after the last one that arrived.
            first_lost_t_us = previous_t_us + self._period_us
            events.append([self._slot - lost, lost, first_lost_t_us])
            self.lost_in_window += lost
        if events:
            self._expire()
        over_rate = self.lost_in_window > self.max_lost_in_window
        if lost > self.max_consecutive:
            # One long gap also fills the window: that is the same fault, reported once.
            self._rate_fired = over_rate
            return self._gap_finding(t_us, lost, events[-1][2])
        if over_rate:
            if self._rate_fired:
                return None
            self._rate_fired = True
            return self._rate_finding(t_us)
        self._rate_fired = False
        return None

    def _expire(self) -> None:
        oldest_in_window = self._slot - self.window_samples + 1
        events = self._events
        while events:
            event = events[0]
            first, count = event[0], event[1]
            if first >= oldest_in_window:
                break
            outside = min(oldest_in_window - first, count)
            self.lost_in_window -= outside
            if outside == count:
                events.popleft()
            else:
                event[0] += outside
                event[1] -= outside
                event[2] += outside * self._period_us

    def _gap_finding(self, t_us: int, lost: int, first_lost_t_us: int) -> Finding:
        return Finding(
            check=self.CHECK,
            message=(
                f"{lost} pressure samples lost in a row ({lost * self._period_us / 1000:g} ms "
                f"blind): tolerance {self.max_consecutive} samples"
            ),
            figures={
                "kind": "consecutive",
                "lost_samples": lost,
                "max_consecutive": self.max_consecutive,
                "blind_ms": lost * self._period_us / 1000,
                "sample_t_us": t_us,
            },
            first_t_us=first_lost_t_us,
        )

    def _rate_finding(self, t_us: int) -> Finding:
        lost = self.lost_in_window
        window = self.window_samples
        return Finding(
            check=self.CHECK,
            message=(
                f"{lost} of the last {window} pressure samples lost ({lost / window:.1%}): "
                f"tolerance {self.loss.distance:.1%} over {self.loss.duration_s:g} s"
            ),
            figures={
                "kind": "fraction",
                "lost_samples": lost,
                "window_samples": window,
                "lost_fraction": round(lost / window, 4),
                "fraction_limit": self.loss.distance,
                "window_s": self.loss.duration_s,
                "sample_t_us": t_us,
            },
            first_t_us=self._events[0][2],
        )


class RestZeroCheck:
    """With the pump stopped long enough for the duct to drain, the reading must be back at the
    zero the self-test took. Between runs this finds what no check can see while the pump runs:
    a transducer drifting slowly (the pressure model learns drift as a change of resistance),
    one moved to another height, or pressure trapped in an occluded duct.

    Armed only while the zero is trusted (the rig is READY or ACTIVE: the self-test took it) and
    the pump is stopped; each rest starts its own settle time.
    """

    CHECK = "rest_zero"

    def __init__(self, tolerance: Tolerance, *, settle_s: float, window_samples: int) -> None:
        self.tolerance = tolerance
        self._distance_cmmhg = tolerance.distance * 100
        self._settle_us = round(settle_s * 1e6)
        self._lasting = _Lasting(tolerance.duration_us)
        # Readings as the board's 0.01 mmHg counts, so the window's running sum is exact over
        # hours at rest.
        self._size = max(window_samples, 1)
        self._window: deque[int] = deque(maxlen=self._size)
        self._sum_cmmhg = 0
        self._rest_since_us: int | None = None
        self._settled = False

    def reset(self) -> None:
        self._lasting.clear()
        self._window.clear()
        self._sum_cmmhg = 0
        self._rest_since_us = None
        self._settled = False

    @property
    def rest_mmhg(self) -> float | None:
        """The settled reading at rest (the window's mean), None while the line settles."""
        if len(self._window) < self._size:
            return None
        return self._sum_cmmhg / self._size / 100

    def update(self, t_us: int, pressure_mmhg: float, at_rest: bool) -> Finding | None:
        if not at_rest or not math.isfinite(pressure_mmhg):
            # NaN is the range check's finding; a run, or an untrusted zero, ends the rest.
            self.reset()
            return None
        since = self._rest_since_us
        if since is None or t_us < since:  # at rest from now, or the clock stepped back
            self._rest_since_us = since = t_us
        if not self._settled:
            if t_us - since < self._settle_us:
                return None
            self._settled = True
        window = self._window
        if len(window) == self._size:
            self._sum_cmmhg -= window[0]
        code = round(pressure_mmhg * 100)
        window.append(code)
        self._sum_cmmhg += code
        if len(window) < self._size:
            return None
        off = abs(self._sum_cmmhg) > self._distance_cmmhg * self._size
        if not self._lasting.update(off, t_us):
            return None
        first = self._lasting.first_t_us
        rest = self.rest_mmhg
        assert first is not None and rest is not None
        at_rest_s = (t_us - since) / 1e6
        tol = self.tolerance
        return Finding(
            check=self.CHECK,
            message=(
                f"pressure at rest reads {rest:.2f} mmHg {at_rest_s:.1f} s after the pump "
                f"stopped: beyond ±{tol.distance:g} mmHg of the self-test's zero for "
                f"{self._lasting.elapsed_s(t_us) * 1000:.0f} ms (a drifting or moved "
                "transducer, or pressure trapped in the duct); vent the line and run the "
                "self-test, which checks and re-takes the zero"
            ),
            figures={
                "rest_pressure_mmhg": round(rest, 2),
                "at_rest_s": round(at_rest_s, 3),
                "distance_mmhg": tol.distance,
                "duration_s": tol.duration_s,
                "sample_t_us": t_us,
            },
            first_t_us=first,
        )


FINDINGS_KEPT = 64


@dataclass
class PlausibilitySupervisor:
    """All plausibility checks on one rig, fed the board's samples and the pump's polls.

    `on_sample` returns the most important new finding of that sample (range, sample gap, stuck,
    pressure model, rest zero: a reading that is not a measurement makes the comparisons behind
    it moot); every finding, including any other raised on the same sample, is kept in `findings`
    until `reset` or `fault_reset` (the newest `FINDINGS_KEPT`: a fault that lasts keeps firing
    while it is latched). The range and sample-gap checks run whether or not the pump runs (a dead
    transducer or a failing link matters before a run starts); stuck and pressure model only while
    it runs; rest zero only while it is stopped.
    """

    settings: PlausibilitySettings = field(default_factory=PlausibilitySettings)
    findings: deque[Finding] = field(
        default_factory=lambda: deque(maxlen=FINDINGS_KEPT), init=False
    )

    def __post_init__(self) -> None:
        s = self.settings
        self.pressure_model = PressureModelCheck(
            s.pressure_model_mmhg,
            sample_period_s=s.sample_period_s,
            line_time_constant_s=s.line_time_constant_s,
            nominal_resistance_mmhg_min_per_ml=s.nominal_resistance_mmhg_min_per_ml,
            min_flow_ml_min=s.min_flow_ml_min,
            steady_after_s=s.steady_after_time_constants * s.line_time_constant_s,
            learn_window_s=s.resistance_learn_window_s,
            floor_fraction=s.resistance_floor_fraction,
            pressure_noise_mmhg=s.pressure_noise_mmhg,
            sigma_margin=s.learned_sigma_margin,
            settled_fraction=s.learn_settled_fraction,
        )
        self.dispensed_volume = DispensedVolumeCheck(
            s.dispensed_volume_ul, fraction=s.dispensed_volume_fraction
        )
        self.sensor_stuck = StuckSensorCheck(s.sensor_stuck_mmhg)
        self.pressure_range = PressureRangeCheck(
            s.pressure_range_mmhg, min_mmhg=s.transducer_min_mmhg, max_mmhg=s.transducer_max_mmhg
        )
        self.sample_gap = SampleGapCheck(
            s.sample_gap_max_consecutive, s.sample_loss_fraction, sample_period_s=s.sample_period_s
        )
        self.rest_zero = RestZeroCheck(
            s.rest_zero_mmhg,
            settle_s=s.rest_settle_time_constants * s.line_time_constant_s,
            window_samples=round(s.rest_window_s / s.sample_period_s),
        )

    def reset(self) -> None:
        """Every disagreement and learned value forgotten (a new rig: the bench and tests)."""
        self.pressure_model.reset()
        self.dispensed_volume.reset()
        self.sensor_stuck.reset()
        self.pressure_range.reset()
        self.sample_gap.reset()
        self.rest_zero.reset()
        self.findings.clear()

    def sample_stream_restarted(self) -> None:
        """The board's link opens (again): the sample counter's baseline is taken from its
        first sample. Samples the board sent while the port was closed were not lost on a link
        the rig was reading (a lost link is judged as such: board_link_lost); counted as a gap,
        a reconnect at start-up latched a fault with no fluid moving."""
        self.sample_gap.reset()

    def fault_reset(self) -> None:
        """The operator cleared a fault: the sample counter's baseline is taken afresh, since
        samples that arrived while a bug kept them from being judged were not lost on the link
        (the gap check would otherwise latch a second fault on the first sample judged), and the
        findings of the run before are dropped. The other checks keep their state: what they
        are timing is still true after the reset."""
        self.sample_gap.reset()
        self.findings.clear()

    def on_sample(
        self,
        t_us: int,
        pressure_mmhg: float,
        sample_counter: int,
        flow_ml_min: float,
        pump_running: bool,
        *,
        zero_trusted: bool,
    ) -> Finding | None:
        """`zero_trusted`: the self-test has taken the zero and no fault has happened since."""
        # Every check sees every sample (their states must stay current); the first non-None in
        # priority order is returned.
        found = self.pressure_range.update(t_us, pressure_mmhg)
        gap = self.sample_gap.update(t_us, sample_counter)
        stuck = self.sensor_stuck.update(t_us, pressure_mmhg, pump_running)
        model = self.pressure_model.update(t_us, pressure_mmhg, flow_ml_min, pump_running)
        rest = self.rest_zero.update(t_us, pressure_mmhg, zero_trusted and not pump_running)
        if found is None and gap is None and stuck is None and model is None and rest is None:
            return None
        raised = [f for f in (found, gap, stuck, model, rest) if f is not None]
        self.findings.extend(raised)
        return raised[0]

    def on_dispensed(self, t_us: int, dispensed_ul: float, commanded_ul: float) -> Finding | None:
        found = self.dispensed_volume.update(t_us, dispensed_ul, commanded_ul)
        if found is not None:
            self.findings.append(found)
        return found
