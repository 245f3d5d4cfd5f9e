"""The fluid world's physics: steady state, time constant, wall, occlusion, perforation, drain,
volume bookkeeping and numerical stability."""

from __future__ import annotations

import itertools
import json
import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.sim.world import FluidWorld, FluidWorldParams

DT_S = 0.0005
C_UL = 0.33
R_TIP = 15.0
R_TUBING = 2.0
TAU_S = R_TIP * 60.0 / 1000.0 * C_UL  # R in mmHg·s/µL times C in µL/mmHg ≈ 0.297 s
OCCLUDED_RATE_MMHG_S = 1000.0 / 60.0 / C_UL  # 1 mL/min into 0.33 µL/mmHg ≈ 50.5 mmHg/s


def run_for(world: FluidWorld, duration_s: float, dt_s: float = DT_S) -> None:
    for _ in range(round(duration_s / dt_s)):
        world.step(dt_s)


def steady_world(flow_ml_min: float = 1.0) -> FluidWorld:
    world = FluidWorld()
    world.set_pump_flow(flow_ml_min)
    run_for(world, 10 * TAU_S)
    return world


def test_steady_state_line_pressure_is_tip_plus_tubing_times_flow() -> None:
    world = steady_world(1.0)
    assert world.duct_pressure_mmhg == pytest.approx(R_TIP * 1.0, rel=1e-3)
    assert world.line_pressure_mmhg == pytest.approx((R_TIP + R_TUBING) * 1.0, rel=1e-3)
    assert world.tip_flow_ml_min == pytest.approx(1.0, rel=1e-3)
    # Normal duct filling pressure, clinical.md: 7.5-19 mmHg at about 1 mL/min.
    assert 7.5 <= world.duct_pressure_mmhg <= 19.0


def test_sensor_offset_adds_to_line_pressure_only() -> None:
    world = FluidWorld(FluidWorldParams(sensor_offset_mmhg=-4.0))
    world.set_pump_flow(1.0)
    run_for(world, 10 * TAU_S)
    assert world.duct_pressure_mmhg == pytest.approx(15.0, rel=1e-3)
    assert world.line_pressure_mmhg == pytest.approx(15.0 + 2.0 - 4.0, rel=1e-3)


def test_time_constant_is_r_times_c() -> None:
    world = FluidWorld()
    world.set_pump_flow(1.0)
    run_for(world, TAU_S)
    assert world.duct_pressure_mmhg == pytest.approx(R_TIP * (1 - math.exp(-1)), rel=1e-3)
    run_for(world, 2 * TAU_S)
    assert world.duct_pressure_mmhg == pytest.approx(R_TIP * (1 - math.exp(-3)), rel=1e-3)


def test_tip_against_wall_raises_resistance_above_40_within_bounded_time() -> None:
    world = steady_world(1.0)
    t_wall_s = world.time_s
    world.set_tip_resistance_target(12 * R_TIP, 0.1)
    crossed_s = None
    previous_mmhg = world.line_pressure_mmhg
    while world.time_s - t_wall_s < 3.0:
        world.step(DT_S)
        assert world.line_pressure_mmhg >= previous_mmhg - 1e-9  # the rise is monotonic
        previous_mmhg = world.line_pressure_mmhg
        if crossed_s is None and world.line_pressure_mmhg / world.pump_flow_ml_min > 40.0:
            crossed_s = world.time_s - t_wall_s
    # Ramp 0.1 s, then approach 180 mmHg with tau = 12·R·C ≈ 3.6 s: crossing near 0.6 s. It
    # cannot be instant (the compliance must fill) and must not take seconds.
    assert crossed_s is not None
    assert 0.3 < crossed_s < 1.0
    assert world.tip_resistance_mmhg_min_per_ml == 12 * R_TIP


def test_wall_ramp_is_linear_in_log_space() -> None:
    world = steady_world(1.0)
    world.set_tip_resistance_target(10 * R_TIP, 0.1)
    run_for(world, 0.05)
    # Halfway through a 10x log-linear ramp the resistance is sqrt(10)x, not 5.5x.
    assert world.tip_resistance_mmhg_min_per_ml == pytest.approx(R_TIP * math.sqrt(10), rel=0.02)
    run_for(world, 0.06)
    assert world.tip_resistance_mmhg_min_per_ml == 10 * R_TIP


def test_occlusion_raises_pressure_at_flow_over_compliance() -> None:
    world = steady_world(1.0)
    world.occlude()
    p0 = world.duct_pressure_mmhg
    run_for(world, 1.0)
    assert world.duct_pressure_mmhg - p0 == pytest.approx(OCCLUDED_RATE_MMHG_S, rel=1e-3)
    assert world.tip_flow_ml_min == 0.0
    assert world.snapshot()["tip_resistance_mmhg_min_per_ml"] is None


def test_occlusion_ramp_reaches_infinity_at_its_end() -> None:
    world = steady_world(1.0)
    world.occlude(ramp_s=0.02)
    run_for(world, 0.01)
    assert 1e3 < world.tip_resistance_mmhg_min_per_ml < math.inf
    run_for(world, 0.011)
    assert world.tip_resistance_mmhg_min_per_ml == math.inf


def test_perforation_latches_only_after_dwell_above_perforation_pressure() -> None:
    world = steady_world(1.0)
    world.occlude()
    t_occluded_s = world.time_s
    p0 = world.duct_pressure_mmhg
    t_cross_s = t_occluded_s + (120.0 - p0) / OCCLUDED_RATE_MMHG_S
    # Above 120 mmHg for 190 ms: not yet.
    run_for(world, t_cross_s + 0.19 - world.time_s)
    assert world.duct_pressure_mmhg > 120.0
    assert not world.perforated
    assert world.time_above_perforation_s == pytest.approx(0.19, abs=DT_S)
    run_for(world, 0.02)
    assert world.perforated
    assert world.perforated_at_s is not None
    assert world.perforated_at_s == pytest.approx(t_cross_s + 0.2, abs=DT_S)
    assert world.leak_resistance_mmhg_min_per_ml == 3.0
    # Latched: clearing the tip and stopping the pump do not heal the duct.
    world.clear()
    world.set_pump_flow(0.0)
    world.set_leak_resistance(math.inf)
    run_for(world, 1.0)
    assert world.perforated
    assert world.leak_resistance_mmhg_min_per_ml == 3.0


def test_excursions_shorter_than_dwell_do_not_perforate_and_dwell_resets() -> None:
    world = steady_world(1.0)
    for _ in range(5):
        # Occlude until 150 ms above 120 mmHg, then clear: the pressure drops back below.
        world.occlude()
        while world.time_above_perforation_s < 0.15:
            world.step(DT_S)
        world.clear()
        run_for(world, 0.5)
        assert world.duct_pressure_mmhg < 120.0
        assert world.time_above_perforation_s == 0.0
    assert not world.perforated


def test_perforation_pressure_falls_while_flow_continues() -> None:
    world = steady_world(1.0)
    world.occlude()
    run_for(world, 3.0)
    assert world.perforated
    run_for(world, 1.0)
    # Tip occluded, leak 3: steady state 3 mmHg at 1 mL/min; everything goes out of the leak.
    assert world.duct_pressure_mmhg == pytest.approx(3.0, rel=0.01)
    assert world.leak_flow_ml_min == pytest.approx(1.0, rel=0.01)


def test_stopping_flow_drains_pressure_through_tip() -> None:
    world = steady_world(1.0)
    p0 = world.duct_pressure_mmhg
    into0 = world.into_duct_ml
    world.set_pump_flow(0.0)
    assert world.line_pressure_mmhg == world.duct_pressure_mmhg  # no tubing drop without flow
    run_for(world, TAU_S)
    assert world.duct_pressure_mmhg == pytest.approx(p0 * math.exp(-1), rel=1e-3)
    run_for(world, 10 * TAU_S)
    assert world.duct_pressure_mmhg < 0.001 * p0
    # The stored volume C·P went into the duct.
    assert world.into_duct_ml - into0 == pytest.approx(C_UL / 1000 * p0, rel=1e-3)


def test_withdraw_clamps_at_floor_and_books_cavitation() -> None:
    world = steady_world(1.0)
    world.occlude()
    world.set_pump_flow(-1.0)
    run_for(world, 3.0)
    assert world.duct_pressure_mmhg == -50.0
    assert world.cavitation_ml > 0
    # Open tip: withdrawing 1 mL/min through 15 settles at -15 mmHg, no cavitation.
    fresh = FluidWorld()
    fresh.set_pump_flow(-1.0)
    run_for(fresh, 10 * TAU_S)
    assert fresh.duct_pressure_mmhg == pytest.approx(-15.0, rel=1e-3)
    assert fresh.cavitation_ml == 0.0


def volumes_balance(world: FluidWorld) -> float:
    """pumped = stored + into duct + leaked − cavitation; returns the residual."""
    return world.pumped_ml - (
        world.stored_ml + world.into_duct_ml + world.leaked_ml - world.cavitation_ml
    )


def test_volumes_are_conserved_through_wall_occlusion_perforation_and_withdraw() -> None:
    world = steady_world(1.0)
    world.set_tip_resistance_target(12 * R_TIP, 0.1)
    run_for(world, 1.0)
    world.occlude()
    run_for(world, 3.0)
    assert world.perforated
    assert world.leaked_ml > 0
    # Withdrawing from a perforated duct draws back through the leak too (leaked_ml is signed).
    world.set_pump_flow(-2.0)
    run_for(world, 3.0)
    world.set_pump_flow(0.5)
    run_for(world, 1.0)
    assert abs(volumes_balance(world)) < 1e-12 + 1e-9 * world.pumped_ml


def test_into_duct_since_matches_hand_integral() -> None:
    world = FluidWorld()
    samples: list[tuple[float, float]] = [(world.time_s, world.tip_flow_ml_min)]
    for k in range(8000):  # 4 s of a flow that swings between infusing and withdrawing
        world.set_pump_flow(0.5 + 1.0 * math.sin(k * DT_S * 5.0))
        world.step(DT_S)
        samples.append((world.time_s, world.tip_flow_ml_min))
    for since_s in (0.5, 1.2345, 2.0, 3.9):
        # Trapezoid integral of the tip flow (mL/min) over time (s) after since_s.
        hand_ml = 0.0
        for (ta, qa), (tb, qb) in itertools.pairwise(samples):
            if tb <= since_s:
                continue
            if ta < since_s:  # partial first interval
                qa = qa + (qb - qa) * (since_s - ta) / (tb - ta)
                ta = since_s
            hand_ml += 0.5 * (qa + qb) * (tb - ta) / 60.0
        assert world.into_duct_since(since_s) == pytest.approx(hand_ml, rel=1e-5, abs=1e-9)
    assert world.into_duct_since(0.0) == world.into_duct_ml
    assert world.into_duct_since(-5.0) == world.into_duct_ml
    assert world.into_duct_since(world.time_s) == 0.0


def test_into_duct_since_covers_history_then_refuses_older_times() -> None:
    params = FluidWorldParams(history_s=1.0)
    world = FluidWorld(params, start_time_s=100.0)
    world.set_pump_flow(1.0)
    run_for(world, 5.0)
    now_s = world.time_s
    # Within the last history_s: answered, and consistent with the steady flow of 1 mL/min.
    assert world.into_duct_since(now_s - 0.9) == pytest.approx(0.9 / 60.0, rel=0.01)
    with pytest.raises(ValueError, match="history starts at"):
        world.into_duct_since(now_s - 3.0)
    assert world.into_duct_since(100.0) == world.into_duct_ml  # at the start: everything


def test_into_duct_since_with_coarse_and_fine_steps() -> None:
    for dt_s in (0.0001, 0.002):
        world = FluidWorld()
        world.set_pump_flow(1.0)
        run_for(world, 10 * TAU_S, dt_s)
        before = world.into_duct_ml
        t_s = world.time_s
        run_for(world, 1.0, dt_s)
        assert world.into_duct_since(t_s) == pytest.approx(world.into_duct_ml - before, rel=1e-6)


def test_long_step_equals_many_short_steps_with_constant_inputs() -> None:
    fine = steady_world(1.0)
    coarse = steady_world(1.0)
    for world in (fine, coarse):
        world.occlude()
    run_for(fine, 0.5, 0.0001)
    coarse.step(0.5)  # an event-loop stall: split internally into <= 2 ms sub-steps
    assert coarse.duct_pressure_mmhg == pytest.approx(fine.duct_pressure_mmhg, rel=1e-9)
    assert coarse.time_s == pytest.approx(fine.time_s)


def test_snapshot_is_strict_json_and_names_units() -> None:
    world = steady_world(1.0)
    snap = world.snapshot()
    text = json.dumps(snap, allow_nan=False)
    assert '"perforated": false' in text
    assert snap["leak_resistance_mmhg_min_per_ml"] is None  # no leak path
    assert snap["line_pressure_mmhg"] == world.line_pressure_mmhg


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("compliance_ul_per_mmhg", 0.0),
        ("tip_resistance_mmhg_min_per_ml", -1.0),
        ("tip_resistance_mmhg_min_per_ml", math.inf),
        ("leak_resistance_mmhg_min_per_ml", math.nan),
        ("min_pressure_mmhg", 10.0),
        ("perforation_dwell_ms", -1.0),
        ("tubing_resistance_mmhg_min_per_ml", -2.0),
    ],
)
def test_bad_params_are_refused_naming_the_field(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        FluidWorldParams(**{field: value})


def test_bad_inputs_are_refused() -> None:
    world = FluidWorld()
    with pytest.raises(ValueError, match="pump flow"):
        world.set_pump_flow(math.nan)
    with pytest.raises(ValueError, match="dt_s"):
        world.step(-0.001)
    with pytest.raises(ValueError, match="tip resistance"):
        world.set_tip_resistance_target(0.0, 0.1)
    with pytest.raises(ValueError, match="ramp_s"):
        world.set_tip_resistance_target(100.0, -1.0)
    with pytest.raises(ValueError, match="leak resistance"):
        world.set_leak_resistance(-3.0)


ops = st.sampled_from(["none", "wall", "occlude", "clear", "leak", "flow"])


@settings(max_examples=60, deadline=None)
@given(
    dt_s=st.floats(min_value=0.0001, max_value=0.002),
    compliance_ul_per_mmhg=st.floats(min_value=0.05, max_value=5.0),
    tip_r=st.floats(min_value=1.0, max_value=100.0),
    tubing_r=st.floats(min_value=0.0, max_value=10.0),
    flows=st.lists(st.floats(min_value=-10.0, max_value=10.0), min_size=1, max_size=6),
    actions=st.lists(ops, min_size=1, max_size=6),
)
def test_stable_and_bounded_for_any_dt_and_parameters(
    dt_s: float,
    compliance_ul_per_mmhg: float,
    tip_r: float,
    tubing_r: float,
    flows: list[float],
    actions: list[str],
) -> None:
    params = FluidWorldParams(
        compliance_ul_per_mmhg=compliance_ul_per_mmhg,
        tip_resistance_mmhg_min_per_ml=tip_r,
        tubing_resistance_mmhg_min_per_ml=tubing_r,
    )
    world = FluidWorld(params)
    q_max = max(abs(q) for q in flows)
    # Above the perforation pressure for at most the dwell (then the leak opens and the steady
    # state is at most 3·q_max, far below): the highest pressure reachable.
    rate_max_mmhg_s = q_max * 1000.0 / 60.0 / compliance_ul_per_mmhg
    p_max = max(120.0 + rate_max_mmhg_s * (0.2 + 2 * dt_s), q_max * tip_r * 12) + 1e-6
    steps = round(0.3 / dt_s)
    for i, action in enumerate(actions):
        world.set_pump_flow(flows[i % len(flows)])
        if action == "wall":
            world.set_tip_resistance_target(12 * tip_r, 0.1)
        elif action == "occlude":
            world.occlude(0.02)
        elif action == "clear":
            world.clear()
        elif action == "leak":
            world.set_leak_resistance(2 * tip_r)
        for _ in range(steps):
            world.step(dt_s)
            p = world.duct_pressure_mmhg
            assert math.isfinite(p)
            assert -50.0 <= p <= p_max
        assert math.isfinite(world.line_pressure_mmhg)
        for key, value in world.snapshot().items():
            assert not (isinstance(value, float) and math.isnan(value)), key
    assert abs(volumes_balance(world)) < 1e-9 * (1 + world.pumped_ml + world.cavitation_ml)


def test_step_costs_a_few_microseconds() -> None:
    """A sanity guard, not a benchmark: the world must keep up with 2 kHz beside the emulators."""
    world = steady_world(1.0)
    world.set_tip_resistance_target(12 * R_TIP, 10.0)  # a ramp in progress: the costlier path
    n = 50_000
    start = time.perf_counter()
    for _ in range(n):
        world.step(DT_S)
    per_step_us = (time.perf_counter() - start) / n * 1e6
    assert per_step_us < 20.0
