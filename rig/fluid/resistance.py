"""Hydraulic resistance estimated continuously from line pressure and pump flow.

R = P / Q (mmHg per mL/min). Two refinements make it safe to act on:

- The line is compliant: when the pump slows, pressure drains with the line's time constant, so
  P / Q_now would overshoot and trip falsely. The denominator is max(Q_now, Q_lagged), where
  Q_lagged follows the commanded flow through a first-order lag with that time constant. In the
  linear model this never overestimates R, during a rise or a fall of flow.
- The rise rate dR/dt is the difference of two adjacent boxcar means of R, divided by their
  spacing. It is only trusted once the flow has been steady for a few time constants: while the
  line fills after a start, R climbs from zero to its true value and would look like a wall.

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


class ResistanceEstimator:
    def __init__(
        self,
        *,
        sample_period_s: float,
        line_time_constant_s: float,
        min_flow_ml_min: float,
        rise_half_window_s: float = 0.05,
        steady_after_time_constants: float = 3.0,
        steady_tolerance: float = 0.05,
    ) -> None:
        self._sample_period_s = sample_period_s
        self._tau_s = line_time_constant_s
        self._min_flow_ml_min = min_flow_ml_min
        half = max(2, round(rise_half_window_s / sample_period_s))
        self._half_window_s = half * sample_period_s
        self._recent = _Boxcar(half)
        self._older = _Boxcar(half)
        self._steady_after_s = steady_after_time_constants * line_time_constant_s
        self._steady_tolerance = steady_tolerance
        self._lagged_flow_ml_min = 0.0
        self._last_t_s: float | None = None
        self._flow_ml_min = 0.0
        self._flow_changed_at_s = 0.0

    def reset(self) -> None:
        self._lagged_flow_ml_min = 0.0
        self._last_t_s = None
        self._flow_ml_min = 0.0
        self._recent.clear()
        self._older.clear()

    def update(self, t_s: float, pressure_mmhg: float, flow_ml_min: float) -> ResistanceReading:
        """Take one pressure sample at time `t_s` with the pump delivering `flow_ml_min`."""
        dt_s = self._sample_period_s if self._last_t_s is None else t_s - self._last_t_s
        self._last_t_s = t_s
        if flow_ml_min != self._flow_ml_min:
            if abs(flow_ml_min - self._flow_ml_min) > self._steady_tolerance * max(
                abs(self._flow_ml_min), self._min_flow_ml_min
            ):
                self._flow_changed_at_s = t_s
                self._recent.clear()
                self._older.clear()
            self._flow_ml_min = flow_ml_min
        # Exact first-order lag for a step held over dt: robust to jitter in sample spacing.
        alpha = 1.0 - math.exp(-max(dt_s, 0.0) / self._tau_s)
        self._lagged_flow_ml_min += alpha * (flow_ml_min - self._lagged_flow_ml_min)

        flow_for_r = max(flow_ml_min, self._lagged_flow_ml_min)
        if flow_for_r < self._min_flow_ml_min:
            self._recent.clear()
            self._older.clear()
            return ResistanceReading(None, None, flow_for_r, flow_steady=False)

        resistance = pressure_mmhg / flow_for_r
        evicted = self._recent.push(resistance)
        if evicted is not None:
            self._older.push(evicted)
        steady = (t_s - self._flow_changed_at_s) >= self._steady_after_s
        rise = None
        if steady and self._older.full:
            rise = (self._recent.mean - self._older.mean) / self._half_window_s
        return ResistanceReading(resistance, rise, flow_for_r, flow_steady=steady)
