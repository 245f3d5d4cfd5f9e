"""The simulator's physics world for the fluid path: a lumped hydraulic model of line and duct.

Pure: no I/O, no asyncio, no clock. The simulator sets the pump flow from its pump model and calls
`step(dt_s)`; scenarios change the outflow resistances over time.

The model (units in names; resistances in mmHg·min/mL, flows in mL/min, compliance in µL/mmHg):

    C · dP/dt = Q_pump − P / R_tip − P / R_leak

    P      duct_pressure_mmhg: pressure in the compliant line + duct volume
    Q_pump pump_flow_ml_min, signed, + into the line (zero-order hold over a step)
    R_tip  resistance of the path around the scope tip into the duct and out of the nipple
    R_leak resistance of a leak (infinite by default; a perforation opens it)

    line_pressure_mmhg = P + Q_pump · R_tubing + sensor_offset_mmhg   (what the transducer reads)

With the inputs held over a step the ODE is linear with constant coefficients, so the step is the
exact exponential solution: unconditionally stable for any dt, and the volumes are the exact
integrals of the flows over the step (so pumped = stored + into duct + leaked − cavitation holds
to rounding). Steps longer than `max_substep_s` are split only so that ramps, the perforation
dwell and the history keep their resolution after an event-loop stall, not for stability.

Defaults: see `FluidWorldParams`. With R_tip = 15 and C = 0.33 µL/mmHg the line's time constant is
R·C ≈ 0.30 s; a full occlusion at 1 mL/min raises pressure at Q/C ≈ 50 mmHg/s.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass

# A resistance that is "effectively infinite" in log-space ramps: log(inf) cannot be interpolated,
# so a ramp towards (or from) an occluded tip runs through this finite stand-in and snaps to
# math.inf at its end. At 100 mmHg it passes 1e-10 mL/min: nothing, for any test or benchmark.
_OCCLUDED_PROXY_MMHG_MIN_PER_ML = 1e12
_ML_MIN_TO_UL_S = 1000.0 / 60.0


@dataclass(frozen=True, slots=True)
class FluidWorldParams:
    """Physical parameters of the fluid path; defaults and sources are in docs/simulator.md."""

    compliance_ul_per_mmhg: float = 0.33
    """Line + duct compliance: with R_tip it sets the time constant R·C ≈ 0.3 s."""
    tip_resistance_mmhg_min_per_ml: float = 15.0
    """Baseline outflow around the tip: 15 mmHg at 1 mL/min, inside the 7.5-19 mmHg normal duct
    filling pressure (clinical.md, salivary-duct analogue)."""
    leak_resistance_mmhg_min_per_ml: float = math.inf
    """Baseline leak path: none."""
    tubing_resistance_mmhg_min_per_ml: float = 2.0
    """Between the transducer and the duct: adds Q·R_tubing to the line reading while flowing."""
    sensor_offset_mmhg: float = 0.0
    """Hydrostatic offset of the transducer (height difference to the duct)."""
    min_pressure_mmhg: float = -50.0
    """Floor on withdraw: below this the duct collapses on the tip and gas leaves solution, so
    the syringe pulls no more liquid; the shortfall is booked as cavitation_ml."""
    perforation_pressure_mmhg: float = 120.0
    """Duct pressure that perforates the wall if held for longer than the dwell."""
    perforation_dwell_ms: float = 200.0
    perforation_leak_resistance_mmhg_min_per_ml: float = 3.0
    """Leak path once perforated: low, so pressure falls while flow continues."""
    history_s: float = 60.0
    """into_duct_since() covers at least this far back."""
    history_resolution_ms: float = 0.5
    """History samples are kept no closer than this (steps faster than it are decimated)."""
    max_substep_s: float = 0.002
    """Longer steps are split into sub-steps no longer than this."""

    def __post_init__(self) -> None:
        positive = {
            "compliance_ul_per_mmhg": self.compliance_ul_per_mmhg,
            "tip_resistance_mmhg_min_per_ml": self.tip_resistance_mmhg_min_per_ml,
            "leak_resistance_mmhg_min_per_ml": self.leak_resistance_mmhg_min_per_ml,
            "perforation_leak_resistance_mmhg_min_per_ml": (
                self.perforation_leak_resistance_mmhg_min_per_ml
            ),
            "history_s": self.history_s,
            "history_resolution_ms": self.history_resolution_ms,
            "max_substep_s": self.max_substep_s,
        }
        for name, value in positive.items():
            # Resistances may be infinite (no path); nothing may be zero, negative or NaN.
            if not value > 0:
                raise ValueError(f"FluidWorldParams.{name} = {value}: expected > 0")
        finite = {
            "compliance_ul_per_mmhg": self.compliance_ul_per_mmhg,
            "tip_resistance_mmhg_min_per_ml": self.tip_resistance_mmhg_min_per_ml,
            "tubing_resistance_mmhg_min_per_ml": self.tubing_resistance_mmhg_min_per_ml,
            "sensor_offset_mmhg": self.sensor_offset_mmhg,
            "min_pressure_mmhg": self.min_pressure_mmhg,
            "perforation_leak_resistance_mmhg_min_per_ml": (
                self.perforation_leak_resistance_mmhg_min_per_ml
            ),
            "history_s": self.history_s,
            "history_resolution_ms": self.history_resolution_ms,
            "max_substep_s": self.max_substep_s,
        }
        for name, value in finite.items():
            if not math.isfinite(value):
                raise ValueError(f"FluidWorldParams.{name} = {value}: expected a finite number")
        if self.tubing_resistance_mmhg_min_per_ml < 0:
            raise ValueError(
                "FluidWorldParams.tubing_resistance_mmhg_min_per_ml = "
                f"{self.tubing_resistance_mmhg_min_per_ml}: expected >= 0"
            )
        if self.min_pressure_mmhg > 0:
            raise ValueError(
                f"FluidWorldParams.min_pressure_mmhg = {self.min_pressure_mmhg}: expected <= 0"
            )
        # The perforation threshold may be inf (perforation disabled, e.g. for characterisation).
        if not self.perforation_pressure_mmhg > 0:
            raise ValueError(
                "FluidWorldParams.perforation_pressure_mmhg = "
                f"{self.perforation_pressure_mmhg}: expected > 0"
            )
        if not (0 <= self.perforation_dwell_ms < math.inf):
            raise ValueError(
                "FluidWorldParams.perforation_dwell_ms = "
                f"{self.perforation_dwell_ms}: expected a finite value >= 0"
            )


def _x_minus_1_minus_e(x: float, one_minus_e: float) -> float:
    """x − (1 − e^−x), given one_minus_e = 1 − e^−x; accurate for tiny x, where it is ≈ x²/2
    and the subtraction would cancel (a near-occluded tip has x ≈ 1e-12)."""
    if x > 1e-3:
        return x - one_minus_e
    return x * x * (0.5 - x * (1.0 / 6.0 - x * (1.0 / 24.0 - x / 120.0)))


def _conductance(resistance: float) -> float:
    return 0.0 if resistance == math.inf else 1.0 / resistance


def _check_resistance(name: str, value: float) -> None:
    if not value > 0:  # also rejects NaN
        raise ValueError(f"{name} = {value}: expected > 0 (math.inf for no path)")


class FluidWorld:
    """Line + duct pressure, driven by the pump flow, drained through the tip and any leak.

    Not thread-safe; one owner steps it. All times are world time (`time_s`), which starts at
    `start_time_s` so the simulator can align it with its clock.
    """

    __slots__ = (
        "_above_s",
        "_c_ml",
        "_g_leak",
        "_g_tip",
        "_hist_cap",
        "_hist_count",
        "_hist_min_dt_s",
        "_hist_next",
        "_hist_t",
        "_hist_v",
        "_last_hist_t",
        "_leak_r",
        "_p",
        "_perf_dwell_s",
        "_perf_p",
        "_q",
        "_ramp_active",
        "_ramp_end_s",
        "_ramp_log_r0",
        "_ramp_slope",
        "_ramp_start_s",
        "_ramp_target",
        "_start_time_s",
        "_tip_r",
        "cavitation_ml",
        "into_duct_ml",
        "leaked_ml",
        "params",
        "perforated",
        "perforated_at_s",
        "pumped_ml",
        "time_s",
    )

    def __init__(
        self, params: FluidWorldParams | None = None, *, start_time_s: float = 0.0
    ) -> None:
        if not math.isfinite(start_time_s):
            raise ValueError(f"start_time_s = {start_time_s}: expected a finite number")
        self.params = params if params is not None else FluidWorldParams()
        p = self.params
        # Internally: pressures in mmHg, flows in mL/min, time in minutes inside _advance, so the
        # compliance is held in mL/mmHg and conductances in mL/min/mmHg.
        self._c_ml = p.compliance_ul_per_mmhg / 1000.0
        self._tip_r = p.tip_resistance_mmhg_min_per_ml
        self._g_tip = _conductance(self._tip_r)
        self._leak_r = p.leak_resistance_mmhg_min_per_ml
        self._g_leak = _conductance(self._leak_r)
        self._perf_p = p.perforation_pressure_mmhg
        self._perf_dwell_s = p.perforation_dwell_ms / 1000.0
        self._q = 0.0
        self._p = 0.0
        self._above_s = 0.0
        self._start_time_s = start_time_s
        self.time_s = start_time_s
        self.pumped_ml = 0.0
        self.into_duct_ml = 0.0
        self.leaked_ml = 0.0
        self.cavitation_ml = 0.0
        self.perforated = False
        self.perforated_at_s: float | None = None
        self._ramp_active = False
        self._ramp_start_s = 0.0
        self._ramp_end_s = 0.0
        self._ramp_log_r0 = 0.0
        self._ramp_slope = 0.0
        self._ramp_target = self._tip_r
        # History of (time, cumulative into_duct_ml) in preallocated arrays of doubles: appending
        # is two stores and an index bump, no allocation. Capacity covers history_s at the
        # resolution plus a margin, so at least history_s is always retained.
        # 0.999: steps of exactly the resolution must not be decimated by float rounding.
        self._hist_min_dt_s = 0.999 * p.history_resolution_ms / 1000.0
        self._hist_cap = math.ceil(p.history_s / self._hist_min_dt_s) + 16
        zeros = bytes(8 * self._hist_cap)
        self._hist_t = array("d", zeros)
        self._hist_v = array("d", zeros)
        self._hist_t[0] = start_time_s
        self._hist_next = 1
        self._hist_count = 1
        self._last_hist_t = start_time_s

    # ---- inputs and scenario hooks ------------------------------------------------------------

    def set_pump_flow(self, ml_min: float) -> None:
        """Pump flow from the pump model, signed (+ into the line); held until the next call."""
        if not math.isfinite(ml_min):
            raise ValueError(f"pump flow = {ml_min} mL/min: expected a finite number")
        self._q = ml_min

    def set_tip_resistance_target(self, value: float, ramp_s: float) -> None:
        """Move the tip resistance to `value`, linearly in log-space over `ramp_s` from now.

        Log-space makes a 10x rise over 100 ms look like a tip meeting a wall: the resistance
        multiplies by the same factor every millisecond. `math.inf` occludes (the ramp runs
        through a 1e12 stand-in and snaps to infinity at its end). ramp_s = 0 is a step.
        """
        _check_resistance("tip resistance target (mmHg·min/mL)", value)
        if not (0 <= ramp_s < math.inf):
            raise ValueError(f"ramp_s = {ramp_s}: expected a finite value >= 0")
        if ramp_s == 0:
            self._ramp_active = False
            self._set_tip(value)
            return
        log_r0 = math.log(min(self._tip_r, _OCCLUDED_PROXY_MMHG_MIN_PER_ML))
        log_r1 = math.log(min(value, _OCCLUDED_PROXY_MMHG_MIN_PER_ML))
        self._ramp_active = True
        self._ramp_start_s = self.time_s
        self._ramp_end_s = self.time_s + ramp_s
        self._ramp_log_r0 = log_r0
        self._ramp_slope = (log_r1 - log_r0) / ramp_s
        self._ramp_target = value

    def set_leak_resistance(self, value: float) -> None:
        """Open, change or close (math.inf) the leak path. A perforation cannot be closed: once
        perforated the leak is never higher than the perforation leak resistance."""
        _check_resistance("leak resistance (mmHg·min/mL)", value)
        if self.perforated:
            value = min(value, self.params.perforation_leak_resistance_mmhg_min_per_ml)
        self._leak_r = value
        self._g_leak = _conductance(value)

    def occlude(self, ramp_s: float = 0.0) -> None:
        """Tip resistance to infinity (nothing escapes around the tip)."""
        self.set_tip_resistance_target(math.inf, ramp_s)

    def clear(self) -> None:
        """Tip and leak back to baseline at once. A perforation stays (it is latched harm)."""
        self.set_tip_resistance_target(self.params.tip_resistance_mmhg_min_per_ml, 0.0)
        self.set_leak_resistance(self.params.leak_resistance_mmhg_min_per_ml)

    def _set_tip(self, value: float) -> None:
        self._tip_r = value
        self._g_tip = _conductance(value)

    # ---- stepping -----------------------------------------------------------------------------

    def step(self, dt_s: float) -> None:
        """Advance world time by dt_s with the current inputs held. Any dt >= 0 is accepted; steps
        longer than max_substep_s are split so events keep their timing resolution."""
        if not (0 <= dt_s < math.inf):
            raise ValueError(f"step dt_s = {dt_s}: expected a finite value >= 0")
        max_dt = self.params.max_substep_s
        if dt_s <= max_dt:
            self._advance(dt_s)
            return
        n = math.ceil(dt_s / max_dt)
        sub = dt_s / n
        for _ in range(n):
            self._advance(sub)

    def _advance(self, dt_s: float) -> None:
        # The hot path (2 kHz alongside the emulators): locals, one exp, no allocation besides
        # the floats themselves.
        t0 = self.time_s
        if self._ramp_active:
            # Resistance at mid-step: second-order accurate for the ramp.
            t_mid = t0 + 0.5 * dt_s
            if t_mid >= self._ramp_end_s:
                self._ramp_active = False
                self._set_tip(self._ramp_target)
            else:
                r = math.exp(self._ramp_log_r0 + self._ramp_slope * (t_mid - self._ramp_start_s))
                self._tip_r = r
                self._g_tip = 1.0 / r
        g_tip = self._g_tip
        g = g_tip + self._g_leak
        q = self._q
        p0 = self._p
        c = self._c_ml
        dt_min = dt_s / 60.0
        # Exact solution of c·dP/dt = q − g·P over dt with q, g constant, written around p0 so
        # that a near-occluded tip (g → 0, p_ss = q/g → huge) loses no precision. With x = dt/τ:
        #   P(dt) = p0 + (p_ss − p0)(1 − e^−x),  ∫P = p0·dt + (p_ss − p0)·τ·(x − 1 + e^−x).
        if g > 0.0:
            p_ss = q / g
            tau_min = c / g
            x = dt_min / tau_min
            em = -math.expm1(-x)
            p1 = p0 + (p_ss - p0) * em
            int_p = p0 * dt_min + (p_ss - p0) * tau_min * _x_minus_1_minus_e(x, em)
        else:
            p_ss = 0.0
            tau_min = 0.0
            p1 = p0 + q * dt_min / c
            int_p = 0.5 * (p0 + p1) * dt_min
        floor = self.params.min_pressure_mmhg
        if p1 < floor:
            # The trajectory is monotonic within a step, so it crosses the floor once at t_c;
            # after that the pressure holds at the floor and the syringe's excess withdrawal is
            # gas / collapse volume, not liquid.
            if p0 <= floor:
                tc_min = 0.0
            elif g > 0.0:
                tc_min = tau_min * math.log1p((p0 - floor) / (floor - p_ss))
            else:
                tc_min = (floor - p0) * c / q
            tc_min = min(max(tc_min, 0.0), dt_min)
            if g > 0.0:
                xc = tc_min / tau_min
                emc = -math.expm1(-xc)
                int_p = p0 * tc_min + (p_ss - p0) * tau_min * _x_minus_1_minus_e(xc, emc)
            else:
                int_p = 0.5 * (p0 + floor) * tc_min
            rest_min = dt_min - tc_min
            int_p += floor * rest_min
            self.cavitation_ml += (g * floor - q) * rest_min
            p1 = floor
        self._p = p1
        self.pumped_ml += q * dt_min
        into = self.into_duct_ml + g_tip * int_p
        self.into_duct_ml = into
        self.leaked_ml += self._g_leak * int_p
        t1 = t0 + dt_s
        self.time_s = t1

        # Perforation dwell, with the exact crossing time inside the step so the dwell does not
        # depend on dt.
        perf_p = self._perf_p
        if p1 > perf_p:
            if p0 > perf_p:
                self._above_s += dt_s
            else:
                if g > 0.0:
                    tc = tau_min * math.log1p((p0 - perf_p) / (perf_p - p_ss)) * 60.0
                else:
                    tc = (perf_p - p0) * c / q * 60.0
                self._above_s = dt_s - min(max(tc, 0.0), dt_s)
            if self._above_s > self._perf_dwell_s and not self.perforated:
                self._perforate(t1)
        else:
            self._above_s = 0.0

        if t1 - self._last_hist_t >= self._hist_min_dt_s:
            i = self._hist_next
            self._hist_t[i] = t1
            self._hist_v[i] = into
            i += 1
            self._hist_next = 0 if i == self._hist_cap else i
            if self._hist_count < self._hist_cap:
                self._hist_count += 1
            self._last_hist_t = t1

    def _perforate(self, t_s: float) -> None:
        self.perforated = True
        self.perforated_at_s = t_s
        self.set_leak_resistance(self._leak_r)  # the latch caps it at the perforation leak

    # ---- readings -----------------------------------------------------------------------------

    @property
    def pump_flow_ml_min(self) -> float:
        return self._q

    @property
    def duct_pressure_mmhg(self) -> float:
        return self._p

    @property
    def line_pressure_mmhg(self) -> float:
        """What the transducer reads: duct pressure + tubing drop + hydrostatic offset."""
        p = self.params
        return self._p + self._q * p.tubing_resistance_mmhg_min_per_ml + p.sensor_offset_mmhg

    @property
    def tip_flow_ml_min(self) -> float:
        return self._p * self._g_tip

    @property
    def leak_flow_ml_min(self) -> float:
        return self._p * self._g_leak

    @property
    def tip_resistance_mmhg_min_per_ml(self) -> float:
        return self._tip_r

    @property
    def leak_resistance_mmhg_min_per_ml(self) -> float:
        return self._leak_r

    @property
    def stored_ml(self) -> float:
        """Liquid held in the compliance above zero pressure: C·P."""
        return self._c_ml * self._p

    @property
    def time_above_perforation_s(self) -> float:
        return self._above_s

    def into_duct_since(self, t_s: float) -> float:
        """Volume (mL) that went into the duct after world time t_s, interpolated in the history.

        t_s at or before the world's start gives everything; t_s older than the retained history
        (at least history_s) raises ValueError rather than guess.
        """
        if math.isnan(t_s):
            raise ValueError("into_duct_since(nan): expected a time")
        now = self.time_s
        total = self.into_duct_ml
        if t_s >= now:
            return 0.0
        if t_s <= self._start_time_s:
            return total
        cap = self._hist_cap
        count = self._hist_count
        first = (self._hist_next - count) % cap
        ts = self._hist_t
        vs = self._hist_v
        if t_s < ts[first]:
            raise ValueError(
                f"into_duct_since({t_s}): history starts at {ts[first]} "
                f"(it covers at least {self.params.history_s} s before now = {now})"
            )
        # Binary search for the last sample at or before t_s, over logical indices.
        lo, hi = 0, count - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if ts[(first + mid) % cap] <= t_s:
                lo = mid
            else:
                hi = mid - 1
        i = (first + lo) % cap
        ta, va = ts[i], vs[i]
        if lo + 1 < count:
            j = (first + lo + 1) % cap
            tb, vb = ts[j], vs[j]
        else:
            tb, vb = now, total  # between the last sample and now
        v_at = va if tb <= ta else va + (vb - va) * (t_s - ta) / (tb - ta)
        return total - v_at

    def snapshot(self) -> dict[str, float | bool | None]:
        """The true state, for the simulator's own telemetry. Infinite resistances are None
        (no path), so the dict encodes as strict JSON."""
        tip_r = self._tip_r
        leak_r = self._leak_r
        return {
            "time_s": self.time_s,
            "pump_flow_ml_min": self._q,
            "duct_pressure_mmhg": self._p,
            "line_pressure_mmhg": self.line_pressure_mmhg,
            "tip_flow_ml_min": self.tip_flow_ml_min,
            "leak_flow_ml_min": self.leak_flow_ml_min,
            "tip_resistance_mmhg_min_per_ml": None if tip_r == math.inf else tip_r,
            "leak_resistance_mmhg_min_per_ml": None if leak_r == math.inf else leak_r,
            "pumped_ml": self.pumped_ml,
            "into_duct_ml": self.into_duct_ml,
            "leaked_ml": self.leaked_ml,
            "cavitation_ml": self.cavitation_ml,
            "stored_ml": self.stored_ml,
            "time_above_perforation_s": self._above_s,
            "perforated": self.perforated,
            "perforated_at_s": self.perforated_at_s,
        }
