"""The plausibility supervisors' details that the mutation run (scripts/mutation.sh) found untested.

A finding is what an operator and the incident record read: these tests pin every finding's
message and figures for one scenario of each check (units, rounding, the side of a
disagreement, the kind of a range fault), the settings' refusals, and the sample-gap window
sliding over a gap that straddles its edge. Durations of 1 s make a wrong unit conversion
visible in the millisecond figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from rig.safety.supervisors import (
    RAIL_HIGH_MMHG,
    DispensedVolumeCheck,
    Finding,
    PlausibilitySettings,
    PlausibilitySupervisor,
    PressureRangeCheck,
    StuckSensorCheck,
    Tolerance,
)

T0_US = 1_000_000
PERIOD_US = 2000
ONE_SECOND = 500  # samples at 500 Hz


def first_finding(
    update: Callable[..., Finding | None], feeds: Sequence[tuple[Any, ...]]
) -> tuple[int, Finding]:
    for index, args in enumerate(feeds):
        finding = update(*args)
        if finding is not None:
            return index, finding
    raise AssertionError("no finding")


def test_a_runaway_finding_states_both_volumes_and_the_relative_limit() -> None:
    check = DispensedVolumeCheck(Tolerance(20.0, 1.0), fraction=0.05)
    polls = [(T0_US + i * 250_000, 1060.456, 1000.123) for i in range(6)]
    assert first_finding(check.update, polls) == (
        4,
        Finding(
            check="dispensed_volume",
            message="pump reports 1060.5 uL dispensed, 60.3 uL more than commanded (runaway)"
            " (1000.1 uL), for 1.00 s: tolerance max(20 uL, 5% of commanded) = 50.0 uL for 1 s",
            figures={
                "dispensed_ul": 1060.46,
                "commanded_ul": 1000.12,
                "difference_ul": 60.33,
                "limit_ul": 50.01,
                "lasted_s": 1.0,
                "distance_ul": 20.0,
                "fraction": 0.05,
                "duration_s": 1.0,
                "poll_t_us": 2_000_000,
            },
            first_t_us=T0_US,
        ),
    )


def test_a_stall_finding_says_less_than_commanded() -> None:
    check = PlausibilitySupervisor().dispensed_volume
    polls = [(T0_US + i * 250_000, 60.0, 100.0) for i in range(4)]
    _, finding = first_finding(check.update, polls)
    assert "40.0 uL less than commanded (stall)" in finding.message
    assert finding.figures["difference_ul"] == -40.0


def test_a_stuck_sensor_finding_states_the_frozen_reading_and_how_long() -> None:
    check = StuckSensorCheck(Tolerance(0.005, 1.0))
    feeds = [(T0_US + i * PERIOD_US, 12.345, True) for i in range(ONE_SECOND + 20)]
    assert first_finding(check.update, feeds) == (
        ONE_SECOND,
        Finding(
            check="sensor_stuck",
            message="pressure reading stuck at 12.35 mmHg (within 0.005 mmHg) for 1000 ms while"
            " the pump runs: a live transducer shows noise; tolerance 1000 ms",
            figures={
                "pressure_mmhg": 12.35,
                "lasted_s": 1.0,
                "distance_mmhg": 0.005,
                "duration_s": 1.0,
                "sample_t_us": 2_000_000,
            },
            first_t_us=T0_US,
        ),
    )


def test_a_stuck_run_is_timed_from_the_reading_that_started_repeating() -> None:
    check = StuckSensorCheck(Tolerance(0.005, 0.01))
    readings = [10.0, 11.0, 11.0, 11.0, 11.0, 11.0, 11.0, 11.0]
    index, finding = first_finding(
        check.update, [(T0_US + i * PERIOD_US, r, True) for i, r in enumerate(readings)]
    )
    assert (index, finding.first_t_us) == (6, T0_US + PERIOD_US)


def test_an_out_of_range_finding_states_the_reading_and_the_span() -> None:
    check = PressureRangeCheck(Tolerance(0.5, 1.0), min_mmhg=-50.0, max_mmhg=300.0)
    feeds = [(T0_US + i * PERIOD_US, 312.345) for i in range(ONE_SECOND + 20)]
    assert first_finding(check.update, feeds) == (
        ONE_SECOND,
        Finding(
            check="pressure_range",
            message="pressure reading at 312.35 mmHg, outside the transducer's range"
            " (-50..300 mmHg, margin 0.5 mmHg) for 1000 ms: tolerance 1000 ms",
            figures={
                "pressure_mmhg": 312.345,
                "kind": "out_of_range",
                "min_mmhg": -50.0,
                "max_mmhg": 300.0,
                "lasted_s": 1.0,
                "distance_mmhg": 0.5,
                "duration_s": 1.0,
                "sample_t_us": 2_000_000,
            },
            first_t_us=T0_US,
        ),
    )


def test_a_nan_reading_is_out_of_range_with_no_number_in_the_figures() -> None:
    check = PlausibilitySupervisor().pressure_range
    _, finding = first_finding(check.update, [(T0_US + i * PERIOD_US, math.nan) for i in range(3)])
    assert finding.figures["pressure_mmhg"] is None
    assert finding.figures["kind"] == "out_of_range"


def test_the_positive_rail_is_reported_as_a_disconnected_transducer() -> None:
    check = PlausibilitySupervisor().pressure_range
    feeds = [(T0_US + i * PERIOD_US, RAIL_HIGH_MMHG) for i in range(3)]
    _, finding = first_finding(check.update, feeds)
    assert finding.figures["kind"] == "rail_high"
    assert finding.message.startswith(
        "pressure reading at the positive rail code (327.67 mmHg): transducer disconnected"
    )


MODEL = PlausibilitySettings(
    line_time_constant_s=1e-6,
    resistance_learn_window_s=0.002,
    learned_sigma_margin=0.0,
    pressure_model_mmhg=Tolerance(3.0, 1.0),
)
UNLEARNED = PlausibilitySettings(
    line_time_constant_s=1e-6,
    resistance_learn_window_s=1000.0,
    pressure_model_mmhg=Tolerance(3.0, 1.0),
)


@pytest.mark.parametrize(
    ("settings", "pressure", "message", "difference", "predicted", "basis"),
    [
        (
            MODEL,
            21.2345,
            "pressure 21.23 mmHg is 4.23 mmHg above the 17.00 mmHg the line model predicts for"
            " 1 mL/min (learned resistance 17.00 mmHg·min/mL), for 1000 ms: tolerance 3 mmHg"
            " for 1000 ms",
            4.235,
            17.0,
            "learned",
        ),
        (
            MODEL,
            12.5,
            "pressure 12.50 mmHg is 4.50 mmHg below the 17.00 mmHg the line model predicts for"
            " 1 mL/min (learned resistance 17.00 mmHg·min/mL), for 1000 ms: tolerance 3 mmHg"
            " for 1000 ms",
            -4.5,
            17.0,
            "learned",
        ),
        (
            UNLEARNED,
            0.5,
            "pressure 0.50 mmHg is 3.75 mmHg below the 4.25 mmHg the line model predicts for"
            " 1 mL/min (lowest resistance a healthy duct has, 4.25 mmHg·min/mL, before this"
            " duct's is learned), for 1000 ms: tolerance 3 mmHg for 1000 ms",
            -3.75,
            4.25,
            "floor",
        ),
    ],
)
def test_a_pressure_model_finding_states_the_side_and_the_model(
    settings: PlausibilitySettings,
    pressure: float,
    message: str,
    difference: float,
    predicted: float,
    basis: str,
) -> None:
    check = PlausibilitySupervisor(settings).pressure_model
    # Two samples at 17 mmHg: the first starts the run, the second (steady) is learned.
    feeds = [
        (T0_US + i * PERIOD_US, pressure if i > 1 else 17.0, 1.0, True)
        for i in range(ONE_SECOND + 20)
    ]
    index, finding = first_finding(check.update, feeds)
    assert index == ONE_SECOND + 2 and finding.first_t_us == T0_US + 2 * PERIOD_US
    assert finding.message == message
    assert finding.figures == {
        "pressure_mmhg": round(pressure, 2),
        "predicted_mmhg": predicted,
        "difference_mmhg": difference,
        "flow_ml_min": 1.0,
        "resistance_mmhg_min_per_ml": predicted,
        "resistance_basis": basis,
        "lasted_s": 1.0,
        "distance_mmhg": 3.0,
        "duration_s": 1.0,
        "sample_t_us": T0_US + (ONE_SECOND + 2) * PERIOD_US,
    }


def test_the_pressure_model_lag_follows_the_real_sample_spacing() -> None:
    # Unlearned, the lag runs at the floor's time constant: 0.3 s x 4.25 / 17 = 75 ms. After one
    # 0.3 s gap the lagged flow is 1 - exp(-4) of the step, not one period's.
    check = PlausibilitySupervisor().pressure_model
    check.update(T0_US, 0.0, 1.0, True)
    after_one_period = check.flow_lag_ml_min
    assert after_one_period == pytest.approx(-math.expm1(-2000 / 75_000))
    check.update(T0_US + 300_000, 0.0, 1.0, True)
    expected = after_one_period + (1 - after_one_period) * -math.expm1(-4.0)
    assert check.flow_lag_ml_min == pytest.approx(expected)


def test_the_pressure_model_learns_the_mean_of_exactly_one_window_once_steady() -> None:
    settings = PlausibilitySettings(
        line_time_constant_s=0.001,
        steady_after_time_constants=2.0,
        resistance_learn_window_s=0.004,
    )
    check = PlausibilitySupervisor(settings).pressure_model
    # The flow starts at sample 0, is steady from sample 1 (2 ms, exactly 2 tau) on, and a
    # window is 2 samples: samples 1-2 and 3-4 are learned, sample 5 waits for its pair.
    pressures = [17.0, 18.0, 19.0, 16.0, 16.5, 17.0]
    for i, p in enumerate(pressures):
        check.update(T0_US + i * PERIOD_US, p, 1.0, True)
        if i == 1:
            assert check.learned is False
        if i == 2:
            assert check.learned is True and check.resistance_mmhg_min_per_ml == 18.5
    assert check.resistance_mmhg_min_per_ml == 16.25
    check.reset()
    assert check.learned is False and check.resistance_mmhg_min_per_ml == 17.0
    for i, p in enumerate(pressures):
        check.update(T0_US + i * PERIOD_US, p, 1.0, True)
    assert check.resistance_mmhg_min_per_ml == 16.25


def test_a_gap_finding_states_the_samples_lost_and_the_blind_time() -> None:
    check = PlausibilitySupervisor().sample_gap
    feeds = [(T0_US + s * PERIOD_US, s) for s in range(40) if not 5 <= s < 18]
    assert first_finding(check.update, feeds)[1] == Finding(
        check="sample_gap",
        message="13 pressure samples lost in a row (26 ms blind): tolerance 10 samples",
        figures={
            "kind": "consecutive",
            "lost_samples": 13,
            "max_consecutive": 10,
            "blind_ms": 26.0,
            "sample_t_us": T0_US + 18 * PERIOD_US,
        },
        first_t_us=T0_US + 5 * PERIOD_US,
    )


def _lossy(slots: int) -> list[tuple[int, int]]:
    """Three samples of every forty lost: 7.5 %, over the 2 % limit after a while."""
    return [(T0_US + s * PERIOD_US, s & 0xFFFF) for s in range(slots) if s % 40 not in (5, 6, 7)]


def test_a_loss_rate_finding_states_the_fraction_of_the_window() -> None:
    check = PlausibilitySupervisor().sample_gap
    assert first_finding(check.update, _lossy(600))[1] == Finding(
        check="sample_gap",
        message="12 of the last 500 pressure samples lost (2.4%): tolerance 2.0% over 1 s",
        figures={
            "kind": "fraction",
            "lost_samples": 12,
            "window_samples": 500,
            "lost_fraction": 0.024,
            "fraction_limit": 0.02,
            "window_s": 1.0,
            "sample_t_us": 1_256_000,
        },
        first_t_us=T0_US + 5 * PERIOD_US,
    )


def test_the_loss_window_expires_a_gap_that_straddles_its_edge_sample_by_sample() -> None:
    settings = PlausibilitySettings(
        sample_loss_fraction=Tolerance(0.5, 0.02), sample_gap_max_consecutive=100
    )
    check = PlausibilitySupervisor(settings).sample_gap  # a window of 10 slots
    check.update(T0_US, 0)
    check.update(T0_US + 5 * PERIOD_US, 5)  # slots 1..4 lost
    assert check.lost_in_window == 4
    seen = []
    for slot in range(6, 16):
        check.update(T0_US + slot * PERIOD_US, slot)
        seen.append(check.lost_in_window)
    # The window [slot-9, slot] passes slots 1..4 at slots 11..14.
    assert seen == [4, 4, 4, 4, 4, 3, 2, 1, 0, 0]


def test_the_loss_window_reports_the_oldest_loss_still_inside_it() -> None:
    settings = PlausibilitySettings(
        sample_loss_fraction=Tolerance(0.3, 0.02), sample_gap_max_consecutive=100
    )
    check = PlausibilitySupervisor(settings).sample_gap  # 10 slots, more than 3 lost fires
    check.update(T0_US, 0)
    check.update(T0_US + 5 * PERIOD_US, 5)  # slots 1..4 lost: fires at once
    for slot in range(6, 12):
        check.update(T0_US + slot * PERIOD_US, slot)
    # Slot 11: the window is 2..11, slot 1 has left it; three lost remain (2..4).
    assert check.lost_in_window == 3
    check.update(T0_US + 14 * PERIOD_US, 14)  # slots 12, 13 lost: 5 in window 5..14? no: 2
    finding = check.update(T0_US + 17 * PERIOD_US, 17)  # slots 15, 16 lost
    assert finding is not None and finding.figures["kind"] == "fraction"
    assert finding.first_t_us == T0_US + 12 * PERIOD_US


def test_reset_forgets_the_sample_counter_and_the_loss_window() -> None:
    check = PlausibilitySupervisor().sample_gap
    for t_us, counter in _lossy(600):
        check.update(t_us, counter)
    check.reset()
    assert check.lost_in_window == 0
    fresh = PlausibilitySupervisor().sample_gap
    # After a reset the check answers exactly as a new one: the first counter is a start.
    feeds = [(t + 10_000_000, (c + 30_000) & 0xFFFF) for t, c in _lossy(600)]
    assert [check.update(*f) for f in feeds] == [fresh.update(*f) for f in feeds]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: Tolerance(math.inf, 0.1),
            "Tolerance.distance = inf: expected a finite value >= 0",
        ),
        (
            lambda: Tolerance(1.0, math.inf),
            "Tolerance.duration_s = inf: expected a finite value >= 0",
        ),
        (
            lambda: PlausibilitySettings(sample_period_s=math.inf),
            "PlausibilitySettings.sample_period_s = inf: expected a finite value > 0",
        ),
        (
            lambda: PlausibilitySettings(nominal_resistance_mmhg_min_per_ml=0.0),
            "PlausibilitySettings.nominal_resistance_mmhg_min_per_ml = 0.0: expected a finite"
            " value > 0",
        ),
        (
            lambda: PlausibilitySettings(min_flow_ml_min=-1.0),
            "PlausibilitySettings.min_flow_ml_min = -1.0: expected a finite value > 0",
        ),
        (
            lambda: PlausibilitySettings(resistance_learn_window_s=0.0),
            "PlausibilitySettings.resistance_learn_window_s = 0.0: expected a finite value > 0",
        ),
        (
            lambda: PlausibilitySettings(steady_after_time_constants=math.inf),
            "PlausibilitySettings.steady_after_time_constants = inf: expected a finite value >= 0",
        ),
        (
            lambda: PlausibilitySettings(dispensed_volume_fraction=math.inf),
            "PlausibilitySettings.dispensed_volume_fraction = inf: expected a finite value >= 0",
        ),
        (
            lambda: PlausibilitySettings(transducer_min_mmhg=300.0),
            "PlausibilitySettings.transducer_min_mmhg = 300.0: expected below"
            " transducer_max_mmhg = 300.0",
        ),
        (
            lambda: PlausibilitySettings(sample_gap_max_consecutive=-1),
            "PlausibilitySettings.sample_gap_max_consecutive = -1: expected >= 0",
        ),
        (
            lambda: PlausibilitySettings(sample_loss_fraction=Tolerance(1.0, 1.0)),
            "PlausibilitySettings.sample_loss_fraction.distance = 1.0: expected a fraction below 1",
        ),
        (
            lambda: PlausibilitySettings(sample_loss_fraction=Tolerance(0.02, 0.0009)),
            "PlausibilitySettings.sample_loss_fraction.duration_s = 0.0009: expected at least"
            " one sample period",
        ),
    ],
)
def test_settings_refusals_name_the_field_its_value_and_the_rule(
    make: object, message: str
) -> None:
    with pytest.raises(ValueError) as raised:
        make()  # type: ignore[operator]
    assert str(raised.value) == message


def test_settings_accept_the_edges_of_their_ranges() -> None:
    settings = PlausibilitySettings(
        steady_after_time_constants=0.0,
        dispensed_volume_fraction=0.0,
        sample_gap_max_consecutive=0,
        sample_loss_fraction=Tolerance(0.0, 0.002),
        pressure_model_mmhg=Tolerance(0.0, 0.0),
    )
    assert PlausibilitySupervisor(settings).sample_gap.window_samples == 1
