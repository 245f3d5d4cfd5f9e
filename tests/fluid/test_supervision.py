"""The stop supervisor (rig/fluid/supervision.py), where every supervisory stop is decided.

Synthetic samples pin each decision exactly: the limit it compares against, on which side of it
equality falls, how many samples it must persist and which sample it is timed from, the order
in which the checks are judged, and what the stop says (message and figures). The plausibility
checks behind the `plausibility` stop are tested in tests/safety/test_supervisors.py; the
controller acting on these stops through the interlock in tests/fluid/test_controller.py.
"""

from __future__ import annotations

import pytest

import rig.fluid.supervision as supervision
from rig.config import LimitsConfig
from rig.fluid.events import StopCause
from rig.fluid.resistance import ResistanceReading
from rig.fluid.supervision import (
    RUNAWAY_GRACE_S,
    STALE_AFTER_S,
    LeakReference,
    Persistence,
    Stop,
    StopSupervisor,
)
from rig.safety.supervisors import PlausibilitySettings


@pytest.mark.parametrize("samples", [0, -1])
def test_persistence_refuses_fewer_than_one_sample(samples: int) -> None:
    with pytest.raises(ValueError, match=f"at least 1 sample, got {samples}"):
        Persistence(samples)


def test_persistence_of_one_fires_on_the_first_sample() -> None:
    check = Persistence(1)
    assert check.first_t_us is None
    assert check.update(True, 10) is True and check.first_t_us == 10


def test_persistence_fires_on_exactly_the_nth_sample_and_keeps_the_first_time() -> None:
    check = Persistence(3)
    assert [check.update(True, t) for t in (100, 102, 104, 106)] == [False, False, True, True]
    assert check.first_t_us == 100


def test_persistence_starts_over_after_a_sample_below_the_limit() -> None:
    check = Persistence(2)
    check.update(True, 100)
    assert check.update(False, 102) is False and check.first_t_us is None
    assert check.update(True, 104) is False and check.first_t_us == 104
    assert check.update(True, 106) is True and check.first_t_us == 104


def test_persistence_clear_forgets_the_run() -> None:
    check = Persistence(2)
    check.update(True, 100)
    check.clear()
    assert check.first_t_us is None
    assert check.update(True, 200) is False and check.first_t_us == 200
    assert check.update(True, 202) is True


def test_leak_reference_settles_on_the_mean_of_exactly_its_samples() -> None:
    ref = LeakReference(settle_samples=2)
    assert ref.update(10.0) is None
    assert ref.update(20.0) == 15.0
    assert ref.update(100.0) == 15.0  # settled: later samples do not move it


def test_leak_reference_clear_starts_a_new_mean() -> None:
    ref = LeakReference(settle_samples=2)
    ref.update(10.0)
    ref.update(20.0)
    ref.clear()
    assert ref.reference is None
    assert ref.update(30.0) is None
    assert ref.update(50.0) == 40.0


# -- the index ---------------------------------------------------------------------------


def test_the_module_names_every_stop_cause_and_where_it_is_decided() -> None:
    doc = supervision.__doc__
    assert doc is not None
    missing = [str(cause) for cause in StopCause if f"`{cause}`" not in doc]
    assert missing == []


# -- limits while fluid moves --------------------------------------------------------------

LIMITS = LimitsConfig()
PERIOD_US = 2000
T0_US = 5_000_000
NO_ESTIMATE = ResistanceReading(None, None, 0.0, flow_steady=False)


def test_the_default_limits_these_tests_are_written_for() -> None:
    assert (LIMITS.max_pressure_mmhg, LIMITS.irrigation_pressure_cap_mmhg) == (40.0, 30.0)
    assert LIMITS.max_resistance_mmhg_min_per_ml == 40.0
    assert LIMITS.max_resistance_rise_mmhg_min_per_ml_per_s == 25.0
    assert LIMITS.leak_resistance_fraction == 0.5
    assert (LIMITS.saline_volume_cap_ml, LIMITS.contrast_volume_cap_ml) == (10.0, 3.0)


def make(samples: int = 2, sample_period_s: float = 0.002) -> StopSupervisor:
    return StopSupervisor(
        LIMITS,
        PlausibilitySettings(),
        persistence_samples=samples,
        sample_period_s=sample_period_s,
    )


class Feed:
    """Samples to one supervisor, 2 ms apart, with a counting sample counter. The pump is told
    it does not run, so the plausibility checks that need a running pump stay quiet: what is
    under test is the limit stops, which `moving` enables."""

    def __init__(self, sup: StopSupervisor) -> None:
        self.sup = sup
        self.n = 0
        self.counter = 0

    @property
    def t_us(self) -> int:
        return T0_US + self.n * PERIOD_US

    def sample(
        self,
        pressure_mmhg: float = 10.0,
        reading: ResistanceReading = NO_ESTIMATE,
        *,
        moving: bool = True,
        bolus: bool = False,
        flow_ml_min: float = 1.0,
        counter_step: int = 1,
        zero_trusted: bool = False,
        saline_ul: float = 0.0,
        contrast_ul: float = 0.0,
    ) -> Stop | None:
        self.counter = (self.counter + counter_step) & 0xFFFF
        stop = self.sup.on_sample(
            self.t_us,
            pressure_mmhg,
            self.counter,
            reading,
            flow_ml_min=flow_ml_min,
            pump_running=False,
            moving=moving,
            bolus=bolus,
            zero_trusted=zero_trusted,
            saline_ul=saline_ul,
            contrast_ul=contrast_ul,
        )
        self.n += 1
        return stop


def resistance(
    r: float | None, rise: float | None = None, steady: bool = True
) -> ResistanceReading:
    return ResistanceReading(r, rise, 1.0, flow_steady=steady)


def test_a_pressure_at_the_limit_for_the_persistence_stops_timed_from_its_first_sample() -> None:
    feed = Feed(make(samples=3))
    first_t_us = feed.t_us
    assert feed.sample(40.0) is None
    assert feed.sample(40.0) is None
    stop = feed.sample(40.0)
    assert stop == Stop(
        StopCause.PRESSURE_LIMIT,
        "pressure 40.0 mmHg at or above the limit 40 mmHg",
        {
            "pressure_mmhg": 40.0,
            "flow_ml_min": 1.0,
            "resistance_mmhg_min_per_ml": None,
            "resistance_rise_mmhg_min_per_ml_per_s": None,
            "sample_t_us": first_t_us + 2 * PERIOD_US,
            "limit_mmhg": 40.0,
        },
        first_t_us,
    )
    assert not stop.cut_power


def test_a_pressure_just_under_the_limit_never_stops() -> None:
    feed = Feed(make(samples=1))
    assert [feed.sample(39.99) for _ in range(5)] == [None] * 5


def test_nothing_is_judged_against_a_limit_while_fluid_does_not_move() -> None:
    feed = Feed(make(samples=1))
    assert feed.sample(100.0, resistance(100.0, 100.0), moving=False, saline_ul=1e9) is None


def test_the_figures_round_what_they_report() -> None:
    feed = Feed(make(samples=1))
    stop = feed.sample(41.23456, resistance(12.34567, 1.23456), flow_ml_min=1.234567)
    assert stop is not None
    assert stop.figures["pressure_mmhg"] == 41.23
    assert stop.figures["flow_ml_min"] == 1.2346
    assert stop.figures["resistance_mmhg_min_per_ml"] == 12.346
    assert stop.figures["resistance_rise_mmhg_min_per_ml_per_s"] == 1.235


def test_a_bolus_stops_at_the_irrigation_cap_and_other_modes_do_not() -> None:
    feed = Feed(make(samples=2))
    assert [feed.sample(30.0) for _ in range(3)] == [None] * 3
    feed = Feed(make(samples=2))
    first_t_us = feed.t_us
    assert feed.sample(30.0, bolus=True) is None
    stop = feed.sample(30.0, bolus=True)
    assert stop is not None
    assert stop.cause is StopCause.BOLUS_PRESSURE_CAP
    assert stop.message == "bolus pressure 30.0 mmHg reached the cap 30 mmHg"
    assert stop.figures["limit_mmhg"] == 30.0
    assert stop.trigger_sample_t_us == first_t_us


def test_a_bolus_just_under_its_cap_goes_on() -> None:
    feed = Feed(make(samples=1))
    assert feed.sample(29.99, bolus=True) is None


def test_the_pressure_limit_is_judged_before_the_bolus_cap() -> None:
    feed = Feed(make(samples=1))
    stop = feed.sample(40.0, bolus=True)
    assert stop is not None and stop.cause is StopCause.PRESSURE_LIMIT


def test_a_resistance_at_its_limit_stops() -> None:
    feed = Feed(make(samples=2))
    first_t_us = feed.t_us
    assert feed.sample(10.0, resistance(40.0)) is None
    stop = feed.sample(10.0, resistance(40.0))
    assert stop is not None
    assert stop.cause is StopCause.RESISTANCE_LIMIT
    assert stop.message == "resistance 40.0 mmHg·min/mL at or above the limit 40"
    assert stop.figures["limit_mmhg_min_per_ml"] == 40.0
    assert stop.trigger_sample_t_us == first_t_us


def test_a_resistance_just_under_its_limit_goes_on() -> None:
    feed = Feed(make(samples=1))
    assert feed.sample(10.0, resistance(39.99)) is None


def test_a_sample_without_an_estimate_breaks_a_run_over_the_resistance_limit() -> None:
    feed = Feed(make(samples=2))
    assert feed.sample(10.0, resistance(45.0)) is None
    assert feed.sample(10.0, NO_ESTIMATE) is None
    assert feed.sample(10.0, resistance(45.0)) is None
    second_run_t_us = feed.t_us - PERIOD_US
    stop = feed.sample(10.0, resistance(45.0))
    assert stop is not None and stop.trigger_sample_t_us == second_run_t_us


def test_the_pressure_limit_is_judged_before_the_resistance_limit() -> None:
    feed = Feed(make(samples=1))
    stop = feed.sample(40.0, resistance(45.0, 30.0))
    assert stop is not None and stop.cause is StopCause.PRESSURE_LIMIT


def test_a_resistance_rising_at_its_limit_stops() -> None:
    feed = Feed(make(samples=2))
    first_t_us = feed.t_us
    assert feed.sample(10.0, resistance(20.0, 25.0)) is None
    stop = feed.sample(10.0, resistance(20.0, 25.0))
    assert stop is not None
    assert stop.cause is StopCause.RESISTANCE_RISE
    assert stop.message == ("resistance rising at 25.0 mmHg·min/mL per s, above the limit 25")
    assert stop.figures["limit_mmhg_min_per_ml_per_s"] == 25.0
    assert stop.trigger_sample_t_us == first_t_us


def test_a_rise_just_under_its_limit_or_unknown_goes_on() -> None:
    feed = Feed(make(samples=1))
    assert feed.sample(10.0, resistance(20.0, 24.99)) is None
    assert feed.sample(10.0, resistance(20.0, None)) is None


def test_the_resistance_limit_is_judged_before_its_rise() -> None:
    feed = Feed(make(samples=1))
    stop = feed.sample(10.0, resistance(40.0, 30.0))
    assert stop is not None and stop.cause is StopCause.RESISTANCE_LIMIT


# The leak check at a 50 ms sample period: it settles on 10 samples (0.5 s) and persists over
# 2 (0.1 s), so whole numbers of samples are easy to count.
LEAK_PERIOD_S = 0.05


def settle_leak(feed: Feed, r: float = 20.0) -> None:
    for _ in range(10):
        assert feed.sample(10.0, resistance(r)) is None


def test_a_resistance_falling_below_the_settled_fraction_is_a_leak() -> None:
    feed = Feed(make(samples=1, sample_period_s=LEAK_PERIOD_S))
    settle_leak(feed, 20.0)
    first_t_us = feed.t_us
    assert feed.sample(10.0, resistance(9.99)) is None
    stop = feed.sample(10.0, resistance(9.99))
    assert stop is not None
    assert stop.cause is StopCause.LEAK_OR_PERFORATION
    assert stop.message == "resistance fell to 10.0 from 20.0 mmHg·min/mL while flow continued"
    assert stop.figures["reference_mmhg_min_per_ml"] == 20.0
    assert stop.figures["fraction_limit"] == 0.5
    assert stop.trigger_sample_t_us == first_t_us


def test_a_resistance_at_exactly_the_fraction_is_not_a_leak() -> None:
    feed = Feed(make(samples=1, sample_period_s=LEAK_PERIOD_S))
    settle_leak(feed, 20.0)
    assert [feed.sample(10.0, resistance(10.0)) for _ in range(5)] == [None] * 5


def test_the_leak_reference_is_the_mean_of_its_settling_samples() -> None:
    feed = Feed(make(samples=1, sample_period_s=LEAK_PERIOD_S))
    for r in (10.0, 30.0) * 5:
        assert feed.sample(10.0, resistance(r)) is None
    feed.sample(10.0, resistance(9.0))
    stop = feed.sample(10.0, resistance(9.0))
    assert stop is not None and stop.figures["reference_mmhg_min_per_ml"] == 20.0


def test_the_leak_reference_figure_is_rounded_to_three_decimals() -> None:
    feed = Feed(make(samples=1, sample_period_s=LEAK_PERIOD_S))
    settle_leak(feed, 20.123456)
    feed.sample(10.0, resistance(9.0))
    stop = feed.sample(10.0, resistance(9.0))
    assert stop is not None and stop.figures["reference_mmhg_min_per_ml"] == 20.123


def test_a_flow_that_is_not_steady_forgets_the_leak_reference_and_its_run() -> None:
    feed = Feed(make(samples=1, sample_period_s=LEAK_PERIOD_S))
    settle_leak(feed, 20.0)
    assert feed.sample(10.0, resistance(5.0)) is None  # the leak run starts
    assert feed.sample(10.0, resistance(5.0, steady=False)) is None  # reference forgotten
    # The next steady samples settle a new reference from 5.0: no leak against it.
    assert [feed.sample(10.0, resistance(5.0)) for _ in range(12)] == [None] * 12


def test_no_estimate_forgets_the_leak_reference() -> None:
    feed = Feed(make(samples=1, sample_period_s=LEAK_PERIOD_S))
    settle_leak(feed, 20.0)
    assert feed.sample(10.0, NO_ESTIMATE) is None
    assert [feed.sample(10.0, resistance(5.0)) for _ in range(12)] == [None] * 12


def test_the_leak_check_persists_for_a_tenth_of_a_second() -> None:
    # 2 ms samples: settles on 250 samples, persists over 50.
    feed = Feed(make(samples=1))
    for i in range(250):
        assert feed.sample(10.0 + (i % 3), resistance(20.0)) is None
    stops = [feed.sample(10.0 + (i % 3), resistance(9.0)) for i in range(50)]
    assert stops[:49] == [None] * 49 and stops[49] is not None


def test_the_saline_cap_stops_at_the_cap_timed_from_its_sample() -> None:
    feed = Feed(make())
    t_us = feed.t_us
    stop = feed.sample(saline_ul=10_000.0)
    assert stop is not None
    assert stop.cause is StopCause.SALINE_VOLUME_CAP
    assert stop.message == "saline volume 10.000 mL reached the cap 10 mL"
    assert stop.figures["saline_ml"] == 10.0 and stop.figures["pressure_mmhg"] == 10.0
    assert stop.trigger_sample_t_us == t_us
    assert feed.sample(saline_ul=9_999.9) is None
    stop = feed.sample(saline_ul=10_123.456)
    assert stop is not None and stop.figures["saline_ml"] == 10.1235


def test_the_contrast_cap_stops_at_the_cap() -> None:
    feed = Feed(make())
    stop = feed.sample(contrast_ul=3_000.0)
    assert stop is not None
    assert stop.cause is StopCause.CONTRAST_VOLUME_CAP
    assert stop.message == "contrast volume 3.000 mL reached the cap 3 mL"
    assert stop.figures["contrast_ml"] == 3.0
    assert stop.trigger_sample_t_us == feed.t_us - PERIOD_US
    assert feed.sample(contrast_ul=2_999.9) is None
    stop = feed.sample(contrast_ul=3_123.456)
    assert stop is not None and stop.figures["contrast_ml"] == 3.1235


def test_the_saline_cap_is_judged_before_the_contrast_cap_and_after_the_limits() -> None:
    feed = Feed(make(samples=1))
    stop = feed.sample(saline_ul=10_000.0, contrast_ul=3_000.0)
    assert stop is not None and stop.cause is StopCause.SALINE_VOLUME_CAP
    stop = feed.sample(40.0, saline_ul=10_000.0)
    assert stop is not None and stop.cause is StopCause.PRESSURE_LIMIT


def test_a_stop_starts_every_limit_run_over() -> None:
    sup = make(samples=2)
    feed = Feed(sup)
    assert feed.sample(40.0) is None
    sup.pump_stopped(StopCause.OPERATOR, 1.0)
    assert feed.sample(40.0) is None
    assert feed.sample(40.0) is not None


@pytest.mark.parametrize(
    ("pressure", "reading", "bolus"),
    [
        (30.0, NO_ESTIMATE, True),
        (10.0, resistance(45.0), False),
        (10.0, resistance(20.0, 30.0), False),
    ],
    ids=["bolus_cap", "resistance", "rise"],
)
def test_a_stop_clears_each_persistent_check(
    pressure: float, reading: ResistanceReading, bolus: bool
) -> None:
    sup = make(samples=2)
    feed = Feed(sup)
    assert feed.sample(pressure, reading, bolus=bolus) is None
    sup.pump_stopped(StopCause.OPERATOR, 1.0)
    assert feed.sample(pressure, reading, bolus=bolus) is None


def test_a_stop_forgets_the_leak_reference_and_its_run() -> None:
    sup = make(samples=1, sample_period_s=LEAK_PERIOD_S)
    feed = Feed(sup)
    settle_leak(feed, 20.0)
    assert feed.sample(10.0, resistance(5.0)) is None
    sup.pump_stopped(StopCause.OPERATOR, 1.0)
    assert [feed.sample(10.0, resistance(5.0)) for _ in range(12)] == [None] * 12


# -- plausibility ----------------------------------------------------------------------------


def test_a_plausibility_finding_is_a_stop_judged_even_while_fluid_does_not_move() -> None:
    feed = Feed(make())
    first_t_us = feed.t_us
    stops = [feed.sample(400.0, moving=False) for _ in range(3)]  # out of the span, 3 samples
    assert stops[:2] == [None, None]
    stop = stops[2]
    assert stop is not None
    assert stop.cause is StopCause.PLAUSIBILITY
    assert stop.figures["check"] == "pressure_range"
    assert stop.trigger_sample_t_us == first_t_us
    assert stop.message.startswith("pressure reading at 400.00 mmHg")


def test_the_sample_counter_reaches_the_plausibility_checks() -> None:
    feed = Feed(make())
    assert feed.sample() is None
    stop = feed.sample(counter_step=20)  # 19 samples lost in a row
    assert stop is not None and stop.figures["check"] == "sample_gap"


def test_the_zero_is_judged_at_rest_only_when_it_is_trusted() -> None:
    """An offset of 5 mmHg at rest: a rest_zero finding once the line has settled (3 s) and the
    mean has been off for its duration, and none while the zero is not trusted."""
    for trusted in (False, True):
        feed = Feed(make())
        stops = [
            feed.sample(5.0 + (i % 2) * 0.01, moving=False, zero_trusted=trusted)
            for i in range(2500)
        ]
        found = [s for s in stops if s is not None]
        if trusted:
            assert [s.figures["check"] for s in found] == ["rest_zero"]
        else:
            assert found == []


def test_a_plausibility_finding_comes_before_the_limits() -> None:
    feed = Feed(make(samples=1))
    stops = [feed.sample(400.0) for _ in range(3)]
    assert stops[0] is not None and stops[0].cause is StopCause.PRESSURE_LIMIT
    assert stops[2] is not None and stops[2].cause is StopCause.PLAUSIBILITY


# -- freshness ---------------------------------------------------------------------------------


def test_no_sample_ever_is_stale() -> None:
    stop = make().check_freshness(10.0, None)
    assert stop == Stop(
        StopCause.PRESSURE_DATA_STALE,
        "no pressure sample for ever while fluid moves (limit 100 ms)",
        {"sample_age_ms": None},
    )


def test_a_sample_older_than_the_limit_is_stale() -> None:
    stop = make().check_freshness(0.1123456, 0.0)
    assert stop is not None
    assert stop.message == "no pressure sample for 112 ms while fluid moves (limit 100 ms)"
    assert stop.figures == {"sample_age_ms": 112.3}


def test_the_age_of_a_stale_sample_is_in_milliseconds() -> None:
    stop = make().check_freshness(1.0, 0.0)
    assert stop is not None
    assert stop.message == "no pressure sample for 1000 ms while fluid moves (limit 100 ms)"


def test_a_sample_exactly_at_the_limit_is_fresh() -> None:
    assert make().check_freshness(STALE_AFTER_S, 0.0) is None
    assert make().check_freshness(10.0, 10.0) is None


# -- a pump that does not stop ---------------------------------------------------------------


def dispensed(
    sup: StopSupervisor,
    now_s: float,
    *,
    infusing: bool = True,
    running: bool = False,
    pump_ul: float = 0.0,
    host_ul: float = 0.0,
) -> Stop | None:
    return sup.on_dispensed(
        now_s,
        round(now_s * 1e6),
        pump_ul=pump_ul,
        host_ul=host_ul,
        infusing=infusing,
        pump_running=running,
    )


def test_a_pump_still_infusing_past_the_grace_after_its_stop_has_its_power_cut() -> None:
    sup = make()
    sup.pump_stopped(StopCause.OPERATOR, 0.0)
    assert dispensed(sup, RUNAWAY_GRACE_S) is None  # exactly the grace: not yet
    stop = dispensed(sup, RUNAWAY_GRACE_S + 0.025, pump_ul=12.34)
    assert stop == Stop(
        StopCause.PUMP_DID_NOT_STOP,
        "the pump still reports infusing 125 ms after its stop command: its power relay was opened",
        {"infused_ul": 12.3, "after_stop_ms": 125.0},
        cut_power=True,
    )
    # One power cut is the end of that story: not repeated on every poll.
    assert dispensed(sup, 11.0) is None


def test_the_runaway_figures_keep_a_tenth_of_a_millisecond() -> None:
    sup = make()
    sup.pump_stopped(StopCause.OPERATOR, 0.0)
    stop = dispensed(sup, 0.123456)
    assert stop is not None and stop.figures["after_stop_ms"] == 123.5


def test_a_pump_that_stopped_or_runs_is_no_runaway() -> None:
    sup = make()
    sup.pump_stopped(StopCause.OPERATOR, 10.0)
    assert dispensed(sup, 11.0, infusing=False) is None
    assert dispensed(sup, 11.0, running=True) is None


def test_no_runaway_before_any_stop_nor_after_a_start() -> None:
    sup = make()
    assert dispensed(sup, 11.0) is None
    sup.pump_stopped(StopCause.OPERATOR, 10.0)
    sup.pump_started()
    assert dispensed(sup, 11.0) is None


def test_the_runaway_check_is_timed_from_the_first_stop() -> None:
    sup = make()
    sup.pump_stopped(StopCause.OPERATOR, 10.0)
    sup.pump_stopped(StopCause.PRESSURE_LIMIT, 10.09)
    assert dispensed(sup, 10.05) is None
    stop = dispensed(sup, 10.101)
    assert stop is not None and stop.figures["after_stop_ms"] == 101.0


def test_a_power_cut_does_not_arm_the_runaway_check() -> None:
    sup = make()
    sup.pump_stopped(StopCause.PUMP_DID_NOT_STOP, 10.0)
    assert dispensed(sup, 11.0) is None


def overdispense(sup: StopSupervisor, polls: range, *, running: bool) -> list[Stop | None]:
    """The pump's count 100 uL past the host's, polled at 4 Hz."""
    return [
        dispensed(
            sup, 20.0 + i * 0.25, infusing=False, running=running, pump_ul=200.0, host_ul=100.0
        )
        for i in polls
    ]


def test_a_running_pump_that_counts_more_than_it_was_told_is_implausible() -> None:
    stops = overdispense(make(), range(3), running=True)
    assert stops[:2] == [None, None]
    stop = stops[2]
    assert stop is not None
    assert stop.cause is StopCause.PLAUSIBILITY and not stop.cut_power
    assert stop.figures["check"] == "dispensed_volume"
    assert stop.trigger_sample_t_us == 20_000_000


def test_a_stopped_pump_that_keeps_counting_has_its_power_cut() -> None:
    stop = overdispense(make(), range(3), running=False)[2]
    assert stop is not None
    assert stop.cause is StopCause.PUMP_DID_NOT_STOP and stop.cut_power
    assert stop.figures["check"] == "dispensed_volume"
    assert stop.message.endswith(" after its stop: power relay opened")
    assert stop.trigger_sample_t_us is None


def test_a_new_run_starts_the_dispensed_count_comparison_over() -> None:
    sup = make()
    assert overdispense(sup, range(2), running=True) == [None, None]
    sup.run_started()
    assert overdispense(sup, range(2, 4), running=True) == [None, None]
