"""Hydraulic resistance estimated continuously from line pressure and pump flow.

R = P / Q (mmHg per mL/min). Three refinements make it safe to act on, at every flow:

- The line is compliant: when the pump slows, pressure drains with the line's time constant, so
  P / Q_now would overshoot and trip falsely. The denominator is max(Q_now, Q_lagged), where
  Q_lagged follows the commanded flow through a first-order lag with that time constant. In the
  linear model this never overestimates R, during a rise or a fall of flow. The time constant is
  R·C: the profile gives it for the nominal duct (fluid.line_time_constant_ms at
  fluid.nominal_resistance_mmhg_min_per_ml), which fixes the compliance C, and the lag takes it
  at the resistance now measured. A duct tighter than the nominal one drains slower; a lag at the
  nominal time constant would read its draining after a cut of the flow as a rising resistance.
- The rise rate dR/dt is the difference of two adjacent boxcar means of R, divided by their
  spacing. It is not trusted while the pump runs ahead of the line (Q above Q_lagged by more
  than a few per cent): while the line fills after a start or a step up, R climbs to its true
  value and would look like a wall. While the flow falls the lagged denominator is sound, so the
  rise stays armed through a cut of the flow: the irrigation back-off cuts it precisely when the
  pressure climbs against a wall.
- R carries the pressure noise divided by the flow: 0.2 mmHg of noise is 0.2 mmHg·min/mL at
  1 mL/min but 2 at 0.1 mL/min. The rise window is sized for the flow, so that the rise
  estimate's noise stays at most a sixth of the rise limit at every flow:
      sigma_rise = sigma_P / Q * sqrt(2 * dt) / W**1.5   (two boxcar means of W / dt samples)
  At 1 mL/min the 50 ms minimum window already gives 0.9 mmHg·min/mL/s against a limit of 25;
  at 0.1 mL/min the window grows to about 100 ms. A slower flow is watched over a longer window,
  which matches the physics: at low flow the pressure also rises more slowly against a wall.

Everything here is plain arithmetic on running sums: one update costs a few microseconds at
500 samples per second.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class ResistanceReading:
    resistance_mmhg_min_per_ml: float | None
    """None while the flow is too low for resistance to mean anything."""
    rise_mmhg_min_per_ml_per_s: float | None
    """None until the flow is steady and the rise window is full."""
    flow_for_resistance_ml_min: float
    flow_steady: bool


class _Boxcar:
    """Running mean over the last `size` values."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.values: deque[float] = deque(maxlen=size)
        self.total = 0.0

    def push(self, value: float) -> float | None:
        """Add `value`; return the value that fell out of the window, if any."""
        evicted = self.values[0] if len(self.values) == self.size else None
        self.values.append(value)
        self.total += value - (evicted or 0.0)
        return evicted

    @property
    def full(self) -> bool:
        return len(self.values) == self.size

    @property
    def mean(self) -> float:
        return self.total / len(self.values)

    def clear(self) -> None:
        self.values.clear()
        self.total = 0.0


RISE_SIGMA_MARGIN = 6.0
"""The rise limit is at least this many standard deviations of the rise estimate's noise: with
the estimate's windows of about 0.1 s, a 45-minute procedure holds some 30,000 independent
windows, and a 6-sigma excursion (one-sided, 1e-9) is then expected once in 30,000 procedures."""


MIN_TAU_RESISTANCE = 0.1
"""mmHg·min/mL: a floor for the resistance the time constant is taken at (a line open to air
reads almost nothing, and a zero time constant would make the lag meaningless)."""


class ResistanceEstimator:
    def __init__(
        self,
        *,
        sample_period_s: float,
        line_time_constant_s: float,
        min_flow_ml_min: float,
        pressure_noise_mmhg: float,
        rise_limit_mmhg_min_per_ml_per_s: float,
        nominal_resistance_mmhg_min_per_ml: float,
        rise_half_window_s: float = 0.05,
        max_rise_half_window_s: float = 0.5,
        steady_tolerance: float = 0.05,
    ) -> None:
        self._sample_period_s = sample_period_s
        # The line's compliance: tau = C * R. With it the lag follows the duct in hand (a tight
        # duct drains slower than the nominal one), not the nominal duct the profile measured.
        self._nominal_r = nominal_resistance_mmhg_min_per_ml
        self._compliance_s_per_r = line_time_constant_s / nominal_resistance_mmhg_min_per_ml
        self._tau_r = nominal_resistance_mmhg_min_per_ml
        """The resistance the lag's time constant is taken at: the last full rise window's."""
        self._flow_ml_min = 0.0
        self._min_flow_ml_min = min_flow_ml_min
        self._noise_mmhg = pressure_noise_mmhg
        self._rise_limit = rise_limit_mmhg_min_per_ml_per_s
        # The rise noise is this over Q·W^1.5 (module docstring); computed once, used per sample.
        self._sigma_scale = (
            RISE_SIGMA_MARGIN * pressure_noise_mmhg * math.sqrt(2.0 * sample_period_s)
        )
        self._min_half = max(2, round(rise_half_window_s / sample_period_s))
        self._max_half = max(self._min_half, round(max_rise_half_window_s / sample_period_s))
        self._recent = _Boxcar(self._min_half)
        self._older = _Boxcar(self._min_half)
        self._steady_tolerance = steady_tolerance
        self._lagged_flow_ml_min = 0.0
        self._last_t_s: float | None = None

    def reset(self) -> None:
        self._flow_ml_min = 0.0
        self._tau_r = self._nominal_r
        self._lagged_flow_ml_min = 0.0
        self._last_t_s = None
        self._recent.clear()
        self._older.clear()

    def half_window_samples(self, flow_ml_min: float) -> int:
        """Samples in each half of the rise window at this flow (see the module's docstring)."""
        dt = self._sample_period_s
        window_s = (self._sigma_scale / (max(flow_ml_min, 1e-9) * self._rise_limit)) ** (2.0 / 3.0)
        samples = math.ceil(float(window_s) / dt)
        return min(self._max_half, max(self._min_half, samples))

    def rise_noise(self, flow_ml_min: float) -> float:
        """One standard deviation of the rise estimate's noise at this flow, in mmHg·min/mL/s."""
        n = self.half_window_samples(flow_ml_min)
        window_s = n * self._sample_period_s
        sigma_r = self._noise_mmhg / max(flow_ml_min, 1e-9)
        return sigma_r * math.sqrt(2.0 / n) / window_s

    def update(self, t_s: float, pressure_mmhg: float, flow_ml_min: float) -> ResistanceReading:
        """Take one pressure sample at time `t_s` with the pump delivering `flow_ml_min`."""
        dt_s = self._sample_period_s if self._last_t_s is None else t_s - self._last_t_s
        self._last_t_s = t_s
        # Exact first-order lag for a step held over dt: robust to jitter in sample spacing.
        tau_s = self._compliance_s_per_r * self._tau_r
        alpha = 1.0 - math.exp(-max(dt_s, 0.0) / tau_s)
        self._lagged_flow_ml_min += alpha * (flow_ml_min - self._lagged_flow_ml_min)

        if flow_ml_min >= self._min_flow_ml_min > self._flow_ml_min:
            # A run starts. What the lag's time constant was taken at belongs to the duct as it
            # was (a wall that has cleared, often): it starts again from the nominal duct. What
            # the lag and the rise windows hold is the host's account of the rest before, which
            # misses what the pump did on its own (a relief withdraw, a volume target reached a
            # poll before the host heard of it): the lag starts from the flow the line's
            # pressure now stands for, and the windows start empty.
            self._tau_r = self._nominal_r
            self._lagged_flow_ml_min = max(pressure_mmhg, 0.0) / self._nominal_r
            self._recent.clear()
            self._older.clear()
        elif flow_ml_min > self._flow_ml_min * (1.0 + self._steady_tolerance):
            # A step up: the tubing's drop (between transducer and duct) follows the flow at
            # once, so R jumps with the step even while the line's lag is still above the new
            # flow. The step must not sit inside a rise window.
            self._recent.clear()
            self._older.clear()
        self._flow_ml_min = flow_ml_min
        flow_for_r = max(flow_ml_min, self._lagged_flow_ml_min)
        if flow_for_r < self._min_flow_ml_min:
            self._recent.clear()
            self._older.clear()
            return ResistanceReading(None, None, flow_for_r, flow_steady=False)

        resistance = pressure_mmhg / flow_for_r
        steady = flow_ml_min - self._lagged_flow_ml_min <= self._steady_tolerance * max(
            flow_ml_min, self._min_flow_ml_min
        )
        if not steady:
            # The line is still filling or draining towards the new flow: R moves for that
            # reason alone. Start the rise windows afresh once it has caught up.
            self._recent.clear()
            self._older.clear()
            return ResistanceReading(resistance, None, flow_for_r, flow_steady=False)
        half = self.half_window_samples(flow_for_r)
        if half != self._recent.size:
            self._recent = _Boxcar(half)
            self._older = _Boxcar(half)
        evicted = self._recent.push(resistance)
        if evicted is not None:
            self._older.push(evicted)
        rise = None
        if self._older.full:
            self._tau_r = max(self._older.mean, MIN_TAU_RESISTANCE)
            rise = (self._recent.mean - self._older.mean) / (half * self._sample_period_s)
        return ResistanceReading(resistance, rise, flow_for_r, flow_steady=True)
