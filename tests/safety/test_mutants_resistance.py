"""rig/fluid/resistance.py's estimator on exact inputs, where the mutation run
(scripts/mutation.sh) found the controller's scenarios too coarse to notice a change.

Times and flows are chosen exactly representable in binary, so "at exactly the limit" means it.
"""

from __future__ import annotations

import math

import pytest

from rig.fluid.resistance import ResistanceEstimator, ResistanceReading


def estimator(**overrides: float) -> ResistanceEstimator:
    settings: dict[str, float] = {
        "sample_period_s": 0.25,
        "line_time_constant_s": 0.5,
        "min_flow_ml_min": 0.25,
        "rise_half_window_s": 0.5,
        "steady_after_time_constants": 2.0,
        "steady_tolerance": 0.25,
    }
    settings.update(overrides)
    return ResistanceEstimator(**settings)


def test_below_the_minimum_flow_there_is_no_resistance_and_no_steady_flow() -> None:
    est = estimator()
    assert est.update(10.0, 5.0, 0.0) == ResistanceReading(None, None, 0.0, flow_steady=False)


def test_at_exactly_the_minimum_flow_the_resistance_is_read() -> None:
    reading = estimator().update(10.0, 5.0, 0.25)
    assert reading.resistance_mmhg_min_per_ml == 20.0
    assert reading.flow_for_resistance_ml_min == 0.25


def test_the_flow_is_steady_exactly_the_settling_time_after_a_change() -> None:
    est = estimator()  # settling: 2 x 0.5 s = 1 s
    assert est.update(10.0, 17.0, 1.0).flow_steady is False
    assert est.update(10.75, 17.0, 1.0).flow_steady is False
    assert est.update(11.0, 17.0, 1.0).flow_steady is True
    default = ResistanceEstimator(
        sample_period_s=0.25, line_time_constant_s=0.5, min_flow_ml_min=0.25
    )
    default.update(10.0, 17.0, 1.0)
    assert default.update(11.25, 17.0, 1.0).flow_steady is False  # 3 tau = 1.5 s by default
    assert default.update(11.5, 17.0, 1.0).flow_steady is True


def test_a_flow_change_within_the_tolerance_keeps_the_flow_steady() -> None:
    est = estimator()
    est.update(10.0, 17.0, 2.0)
    assert est.update(11.0, 17.0, 2.5).flow_steady is True  # exactly 25 % of 2.0
    assert est.update(11.25, 17.0, 2.0).flow_steady is True
    assert est.update(11.5, 17.0, 1.0).flow_steady is False  # more than 25 % of 2.0


def test_the_lagged_flow_follows_the_real_sample_spacing() -> None:
    est = estimator()
    first = est.update(10.0, 10.0, 1.0)
    lag = -math.expm1(-0.25 / 0.5)
    assert first.flow_for_resistance_ml_min == 1.0
    # The flow drops: the denominator is the lagged flow, which decays over the real 1 s gap.
    for t in (10.25, 10.5, 10.75, 11.0):
        est.update(t, 10.0, 1.0)
        lag += (1.0 - lag) * -math.expm1(-0.25 / 0.5)
    reading = est.update(12.0, 10.0, 0.5)
    expected = lag + (0.5 - lag) * -math.expm1(-1.0 / 0.5)
    assert reading.flow_for_resistance_ml_min == pytest.approx(expected, rel=1e-12)


def test_the_rise_is_the_slope_of_the_resistance_once_both_windows_are_full() -> None:
    est = estimator()  # half window: 2 samples of 0.25 s
    rises = []
    for i in range(12):
        t = 10.0 + 0.25 * i
        reading = est.update(t, 10.0 + 2.0 * i, 1.0)  # R climbs 2 per sample: 8 per second
        rises.append(reading.rise_mmhg_min_per_ml_per_s)
    assert rises[:4] == [None] * 4  # steady only after 1 s
    assert rises[4:] == [pytest.approx(8.0)] * 8


def test_the_rise_restarts_after_a_flow_change_and_after_a_reset() -> None:
    est = estimator()
    for i in range(8):
        est.update(10.0 + 0.25 * i, 10.0, 1.0)
    est.update(12.0, 20.0, 2.0)  # a real change: windows emptied, settling restarts
    rises = [est.update(12.0 + 0.25 * i, 20.0 + 4.0 * i, 2.0) for i in range(1, 8)]
    assert [r.rise_mmhg_min_per_ml_per_s for r in rises] == [None] * 3 + [pytest.approx(8.0)] * 4
    est.reset()
    assert est.update(20.0, 5.0, 0.0) == ResistanceReading(None, None, 0.0, flow_steady=False)


def test_the_half_window_is_at_least_two_samples() -> None:
    est = estimator(rise_half_window_s=0.0, steady_after_time_constants=0.0)
    rises = [
        est.update(10.0 + 0.25 * i, 10.0 + i, 1.0).rise_mmhg_min_per_ml_per_s for i in range(5)
    ]
    assert rises[:3] == [None] * 3 and rises[3] == pytest.approx(4.0)
