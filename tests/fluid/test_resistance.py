"""The resistance estimator (rig/fluid/resistance.py) on exact inputs: the controller's
scenarios are too coarse to notice a change of one sample or one window (the mutation run,
scripts/mutation.sh, showed it).

Times and flows are chosen exactly representable in binary, so "at exactly the limit" means it.
"""

from __future__ import annotations

import math

import pytest

from rig.fluid.resistance import RISE_SIGMA_MARGIN, ResistanceEstimator, ResistanceReading


def estimator(**overrides: float) -> ResistanceEstimator:
    settings: dict[str, float] = {
        "sample_period_s": 0.25,
        "line_time_constant_s": 0.5,
        "min_flow_ml_min": 0.25,
        "pressure_noise_mmhg": 1e-6,  # noise-free: the rise window stays at its minimum
        "rise_limit_mmhg_min_per_ml_per_s": 25.0,
        # The nominal resistance is the one these tests feed, so the time constant stays 0.5 s.
        "nominal_resistance_mmhg_min_per_ml": 10.0,
        "rise_half_window_s": 0.5,
        "steady_tolerance": 0.25,
    }
    settings.update(overrides)
    return ResistanceEstimator(**settings)


def test_below_the_minimum_flow_there_is_no_resistance_and_no_steady_flow() -> None:
    est = estimator()
    assert est.update(10.0, 5.0, 0.0) == ResistanceReading(None, None, 0.0, flow_steady=False)


def test_at_exactly_the_minimum_flow_the_resistance_is_read() -> None:
    # 2 mmHg stands for 0.2 mL/min on the nominal 10: the run's own flow is the larger.
    reading = estimator().update(10.0, 2.0, 0.25)
    assert reading.resistance_mmhg_min_per_ml == 8.0
    assert reading.flow_for_resistance_ml_min == 0.25


def test_the_flow_is_steady_once_the_line_has_caught_up_with_the_pump() -> None:
    est = estimator()  # from a line at rest, the lag after n more samples of 0.25 s is
    # 1 - exp(-n / 2): within 25 % at n = 3
    assert est.update(10.0, 0.0, 1.0).flow_steady is False
    assert est.update(10.25, 17.0, 1.0).flow_steady is False
    assert est.update(10.5, 17.0, 1.0).flow_steady is False
    assert est.update(10.75, 17.0, 1.0).flow_steady is True


def test_a_flow_change_within_the_tolerance_keeps_the_flow_steady() -> None:
    est = estimator(steady_tolerance=0.5)
    for i in range(40):
        est.update(10.0 + 0.25 * i, 17.0, 2.0)  # lag settled at 2.0 (to 1e-8)
    assert est.update(20.0, 17.0, 2.5).flow_steady is True  # |2.5 - lag| below 50 % of 2.5
    est = estimator(steady_tolerance=0.1)
    for i in range(40):
        est.update(10.0 + 0.25 * i, 17.0, 2.0)
    assert est.update(20.0, 17.0, 2.5).flow_steady is False  # 2.5 - lag is more than 10 %


def test_the_lagged_flow_follows_the_real_sample_spacing() -> None:
    est = estimator()
    est.update(9.75, 0.0, 0.0)
    first = est.update(10.0, 0.0, 1.0)  # a run starts on a line at rest: the lag from zero
    lag = 0.0
    assert first.flow_for_resistance_ml_min == 1.0
    # The flow drops: the denominator is the lagged flow, which decays over the real 1 s gap.
    for t in (10.25, 10.5, 10.75, 11.0):
        est.update(t, 10.0, 1.0)
        lag += (1.0 - lag) * -math.expm1(-0.25 / 0.5)
    reading = est.update(12.0, 10.0, 0.5)
    expected = lag + (0.5 - lag) * -math.expm1(-1.0 / 0.5)
    assert reading.flow_for_resistance_ml_min == pytest.approx(expected, rel=1e-12)


def test_the_rise_is_the_slope_of_the_resistance_once_both_windows_are_full() -> None:
    # Half window: 2 samples of 0.25 s. The run starts at 10 mmHg, which stands for the run's
    # own 1 mL/min on the nominal 10: the line is caught up from the first sample.
    est = estimator()
    rises = []
    for i in range(12):
        t = 10.0 + 0.25 * i
        reading = est.update(t, 10.0 + 2.0 * i, 1.0)  # R climbs 2 per sample: 8 per second
        rises.append(reading.rise_mmhg_min_per_ml_per_s)
    assert rises[:3] == [None] * 3  # 4 samples fill both windows
    assert rises[3:] == [pytest.approx(8.0)] * 9


def test_the_rise_restarts_after_a_flow_change_and_after_a_reset() -> None:
    est = estimator()
    for i in range(40):
        est.update(10.0 + 0.25 * i, 10.0, 1.0)
    assert est.update(20.0, 20.0, 2.0).rise_mmhg_min_per_ml_per_s is None  # windows emptied
    est.reset()
    assert est.update(30.0, 5.0, 0.0) == ResistanceReading(None, None, 0.0, flow_steady=False)


def test_the_half_window_is_at_least_two_samples() -> None:
    est = estimator(rise_half_window_s=0.0)
    assert est.half_window_samples(100.0) == 2


def _real_estimator(noise: float) -> ResistanceEstimator:
    return ResistanceEstimator(
        sample_period_s=0.002,
        line_time_constant_s=0.3,
        min_flow_ml_min=0.1,
        pressure_noise_mmhg=noise,
        rise_limit_mmhg_min_per_ml_per_s=25.0,
        nominal_resistance_mmhg_min_per_ml=17.0,
    )


@pytest.mark.parametrize("flow", [0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 3.0])
def test_the_rise_windows_hold_its_noise_at_a_sixth_of_the_limit_at_every_flow(flow: float) -> None:
    """The class behind the 0.1 mL/min nuisance stop: R = P / Q carries noise / Q, and a rise
    window sized for 1 mL/min let that noise reach the limit at the lowest flows."""
    est = _real_estimator(0.2)
    assert est.rise_noise(flow) <= 25.0 / RISE_SIGMA_MARGIN * 1.001
    assert est.half_window_samples(flow) >= est.half_window_samples(3.0)


def test_the_rise_window_grows_as_the_flow_falls_and_stops_at_its_maximum() -> None:
    est = _real_estimator(0.2)
    assert est.half_window_samples(1.0) == 25  # the 50 ms minimum
    assert est.half_window_samples(0.1) > est.half_window_samples(0.2) > 25
    assert est.half_window_samples(1e-6) == 250  # capped at 0.5 s


def test_a_noisier_transducer_gets_longer_windows() -> None:
    assert _real_estimator(0.5).half_window_samples(0.1) > _real_estimator(0.2).half_window_samples(
        0.1
    )


def _rc_line(est: ResistanceEstimator, tip: float, flows: list[float]) -> tuple[float, float]:
    """Feed `est` an RC line (the simulator's: C = 0.3 s / 17, tubing 2) with 0.2 mmHg noise;
    return the largest rise and resistance it reported."""
    import random

    tau_s = 0.3 / 17.0 * tip
    pressure, t_s, rng = 0.0, 100.0, random.Random(1)
    max_rise = max_r = -math.inf
    for flow in flows:
        pressure += -math.expm1(-0.002 / tau_s) * (tip * flow - pressure)
        reading = est.update(t_s, round(pressure + 2.0 * flow + rng.gauss(0.0, 0.2), 2), flow)
        t_s += 0.002
        if reading.rise_mmhg_min_per_ml_per_s is not None:
            max_rise = max(max_rise, reading.rise_mmhg_min_per_ml_per_s)
        if reading.resistance_mmhg_min_per_ml is not None:
            max_r = max(max_r, reading.resistance_mmhg_min_per_ml)
    return max_rise, max_r


def test_a_tight_duct_drains_slower_and_a_flow_cut_is_not_a_wall() -> None:
    """A duct tighter than the nominal one (R 32 against 17) drains with a longer time constant:
    a lag at the nominal time constant made its pressure look like a rising resistance after
    each cut of the flow (rise 45, R 58 here: both over their limits)."""
    est = _real_estimator(0.2)
    flows = [3.0] * 3000 + [0.3] * 3000 + [2.0] * 3000 + [0.2] * 3000
    max_rise, max_r = _rc_line(est, 30.0, flows)
    assert max_rise < 25.0 / 1.5
    assert max_r < 40.0


def test_a_wall_is_a_rise_even_while_the_flow_is_cut() -> None:
    """The irrigation back-off cuts the flow as the pressure climbs against a wall: the rise
    stays armed while the flow falls (the lagged flow is then a sound denominator)."""
    est = _real_estimator(0.2)
    _rc_line(est, 15.0, [1.5] * 2000)
    # The wall: the outflow resistance is 12 times higher, and the flow is cut to a fifth.
    rises = []
    pressure = 1.5 * 15.0
    t_s = 104.0
    for i in range(100):
        flow = 1.5 if i < 25 else 0.3
        pressure += -math.expm1(-0.002 / (0.3 / 17.0 * 180.0)) * (180.0 * flow - pressure)
        reading = est.update(t_s, pressure + 2.0 * flow, flow)
        t_s += 0.002
        rises.append(reading.rise_mmhg_min_per_ml_per_s)
    assert any(r is not None and r > 25.0 for r in rises[30:])


def test_a_run_starts_with_empty_rise_windows_and_the_nominal_time_constant() -> None:
    """After a wall stop the relief withdraw pulls the pressure down and lets it come back while
    the pump is idle: a restart judged the rise across that (a false resistance_rise found by
    the envelope's restart-after-a-wall segments, and by stop-latency at 3 mL/min)."""
    est = _real_estimator(0.2)
    t_s = 100.0
    for _ in range(1000):  # 2 s at 1 mL/min against a wall: the lag's resistance is the wall's
        est.update(t_s, 60.0, 1.0)
        t_s += 0.002
    for i in range(25):  # stopped; the relief pulls the line down
        est.update(t_s, 60.0 - 2.0 * i, 0.0)
        t_s += 0.002
    restart = est.update(t_s, 10.0, 0.35)
    assert restart.rise_mmhg_min_per_ml_per_s is None
    assert est._tau_r == 17.0  # the nominal duct's, not the wall's
    # The lag starts from the flow the line's 10 mmHg stands for on the nominal duct, not from
    # the host's account of the idle time (which the relief's withdraw is not part of).
    assert restart.flow_for_resistance_ml_min == pytest.approx(10.0 / 17.0)


def test_a_step_up_below_the_lagged_flow_is_not_a_rise() -> None:
    """The irrigation back-off started a run at a tenth of its flow on a line still pressurised
    by the prime, then stepped to the full flow while the lag was still above it: the tubing's
    drop jumped with the step inside a rise window (a false resistance_rise in the daemon)."""
    est = _real_estimator(0.2)
    flows = [2.0] * 1000 + [0.0] * 20 + [0.12] * 40 + [1.0] * 500
    max_rise, _ = _rc_line(est, 15.0, flows)
    assert max_rise < 25.0 / 2
