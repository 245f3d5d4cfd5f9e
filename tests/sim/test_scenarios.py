"""Scenarios: each one's signature effect on the world, the registry's errors, and the runner
playing minutes of simulated time in well under real time."""

from __future__ import annotations

import itertools
import math
import time

import pytest

from drivers.clock import ManualClock
from drivers.sim.scenarios import (
    SCENARIOS,
    Scenario,
    TraceRow,
    make_scenario,
    run_scenario,
)
from drivers.sim.world import FluidWorld

DT_S = 0.0005
R_TIP = 15.0


def play(
    scenario: Scenario,
    duration_s: float,
    *,
    flow_ml_min: float = 1.0,
    dt_s: float = DT_S,
    record_period_s: float = 0.001,
) -> tuple[FluidWorld, list[TraceRow]]:
    world = FluidWorld()
    rows = run_scenario(
        world,
        scenario,
        lambda _t_s: flow_ml_min,
        duration_s,
        dt_s,
        ManualClock(),
        record_period_s=record_period_s,
    )
    return world, rows


def at(rows: list[TraceRow], t_s: float) -> TraceRow:
    """The first row at or after t_s."""
    return next(row for row in rows if row.t_s >= t_s - 1e-9)


def resistance(row: TraceRow) -> float:
    """What the rig sees: line pressure over pump flow."""
    return row.line_pressure_mmhg / row.pump_flow_ml_min


def test_registry_names_every_scenario() -> None:
    assert set(SCENARIOS) >= {
        "normal",
        "tip_against_wall",
        "full_occlusion",
        "perforation",
        "slow_leak",
    }
    for name, factory in SCENARIOS.items():
        scenario = factory()
        assert scenario.name == name
        assert scenario.description


def test_normal_keeps_baseline() -> None:
    world, rows = play(make_scenario("normal"), 5.0)
    late = [row for row in rows if row.t_s > 3.0]  # after 10 time constants
    assert all(r.line_pressure_mmhg == pytest.approx(17.0, rel=1e-3) for r in late)
    assert world.tip_resistance_mmhg_min_per_ml == R_TIP
    assert world.leak_resistance_mmhg_min_per_ml == math.inf
    assert world.leaked_ml == 0.0


def test_tip_against_wall_raises_resistance_after_delay() -> None:
    scenario = make_scenario("tip_against_wall", delay_s=3.0, factor=12.0, ramp_s=0.1)
    world, rows = play(scenario, 5.0)
    before = at(rows, 2.99)
    assert resistance(before) == pytest.approx(17.0, rel=1e-3)
    assert before.tip_resistance_mmhg_min_per_ml == R_TIP
    # Log-linear: halfway through the ramp the tip is at sqrt(12)x baseline.
    assert at(rows, 3.05).tip_resistance_mmhg_min_per_ml == pytest.approx(
        R_TIP * math.sqrt(12.0), rel=0.03
    )
    assert at(rows, 3.101).tip_resistance_mmhg_min_per_ml == 12 * R_TIP
    crossed = next(row for row in rows[1:] if resistance(row) > 40.0)
    assert 3.3 < crossed.t_s < 4.0
    assert not world.perforated


def test_full_occlusion_blocks_the_tip_within_20_ms() -> None:
    scenario = make_scenario("full_occlusion", delay_s=1.0)
    _world, rows = play(scenario, 2.0)
    assert at(rows, 1.021).tip_resistance_mmhg_min_per_ml == math.inf
    assert at(rows, 1.021).tip_flow_ml_min == 0.0
    # Afterwards pressure rises at flow / compliance: 1 mL/min into 0.33 µL/mmHg ≈ 50.5 mmHg/s.
    rise_mmhg = at(rows, 1.9).duct_pressure_mmhg - at(rows, 1.4).duct_pressure_mmhg
    assert rise_mmhg / 0.5 == pytest.approx(1000.0 / 60.0 / 0.33, rel=1e-3)


def test_perforation_pressure_falls_while_flow_continues() -> None:
    scenario = make_scenario("perforation", delay_s=3.0)
    world, rows = play(scenario, 5.0)
    before = at(rows, 2.99)
    after = rows[-1]
    assert before.duct_pressure_mmhg == pytest.approx(15.0, rel=1e-3)
    # Leak 3 in parallel with tip 15: 2.5 mmHg at 1 mL/min, and the pump never stopped.
    assert after.duct_pressure_mmhg == pytest.approx(2.5, rel=1e-3)
    assert after.pump_flow_ml_min == 1.0
    assert after.pumped_ml > before.pumped_ml
    assert after.leak_flow_ml_min == pytest.approx(2.5 / 3.0, rel=1e-3)
    assert after.leaked_ml > 0
    # A scripted perforation is for the rig to detect; the latched `perforated` flag marks only
    # a pressure-induced one.
    assert not world.perforated


def test_pressure_induced_perforation_shows_in_trace() -> None:
    # Occlusion at 1 mL/min, nobody stops the pump: 120 mmHg after ~2.1 s, perforated 0.2 s on.
    world, rows = play(make_scenario("full_occlusion"), 4.0, record_period_s=0.01)
    assert world.perforated
    first = next(row for row in rows if row.perforated)
    assert 2.0 < first.t_s < 2.6
    assert rows[-1].duct_pressure_mmhg < 10.0


def test_slow_leak_lowers_resistance_over_minutes_faster_than_real_time() -> None:
    scenario = make_scenario("slow_leak")  # infinite -> 2x tip resistance over 10 minutes
    clock = ManualClock(start_s=1000.0)
    world = FluidWorld(start_time_s=1000.0)
    start = time.perf_counter()
    rows = run_scenario(world, scenario, lambda _t: 1.0, 600.0, 0.001, clock, record_period_s=1.0)
    wall_s = time.perf_counter() - start
    # A sanity guard, not a benchmark: 600 s of 1 ms steps must not take real time (it takes
    # about 1 s; the bound leaves room for a loaded machine and still fails a real-time sleep).
    assert wall_s < 60.0
    assert clock.monotonic() == pytest.approx(1600.0)
    assert world.time_s == pytest.approx(1600.0)
    minutes = [at(rows, 60.0 * m) for m in range(1, 11)]
    seen = [resistance(row) for row in minutes]
    assert all(a > b for a, b in itertools.pairwise(seen))
    # End: tip 15 in parallel with leak 30 gives 10 mmHg in the duct, 12 on the line.
    # (The scenario last applied one step before the end, at 599.999 s.)
    assert rows[-1].leak_resistance_mmhg_min_per_ml == pytest.approx(30.0, rel=1e-5)
    assert rows[-1].duct_pressure_mmhg == pytest.approx(10.0, rel=1e-3)
    # Halfway (conductance linear): leak 60, parallel 12 mmHg.
    assert at(rows, 300.0).duct_pressure_mmhg == pytest.approx(12.0, rel=2e-3)


def test_runner_records_start_period_and_end() -> None:
    clock = ManualClock()
    rows = run_scenario(
        FluidWorld(), make_scenario("normal"), lambda _t: 1.0, 1.0, DT_S, clock, record_period_s=0.1
    )
    assert [round(row.t_s, 6) for row in rows] == [round(0.1 * k, 6) for k in range(11)]
    every = run_scenario(
        FluidWorld(),
        make_scenario("normal"),
        lambda _t: 1.0,
        0.01,
        DT_S,
        ManualClock(),
        record_period_s=0,
    )
    assert len(every) == 1 + 20


def test_runner_feeds_the_flow_profile_by_time() -> None:
    rows = run_scenario(
        FluidWorld(),
        make_scenario("normal"),
        lambda t_s: 0.0 if t_s < 1.0 else 2.0,
        3.0,
        DT_S,
        ManualClock(),
        record_period_s=0.01,
    )
    assert at(rows, 0.5).pumped_ml == 0.0
    assert rows[-1].pumped_ml == pytest.approx(2.0 * 2.0 / 60.0, rel=1e-6)


def test_factories_make_fresh_scenarios() -> None:
    first = make_scenario("tip_against_wall")
    world_a, _ = play(first, 0.5)
    second = make_scenario("tip_against_wall")
    world_b, _ = play(second, 0.5)
    assert world_b.tip_resistance_mmhg_min_per_ml == world_a.tip_resistance_mmhg_min_per_ml


def test_unknown_scenario_lists_known_names() -> None:
    with pytest.raises(ValueError, match="unknown scenario 'tip_against_door'") as info:
        make_scenario("tip_against_door")
    for name in ("normal", "tip_against_wall", "full_occlusion", "perforation", "slow_leak"):
        assert name in str(info.value)
    with pytest.raises(ValueError, match="known scenarios"):
        SCENARIOS["nope"]


def test_unknown_parameter_lists_known_parameters() -> None:
    with pytest.raises(ValueError, match="no parameter 'fator'") as info:
        make_scenario("tip_against_wall", fator=12.0)
    assert "delay_s, factor, ramp_s" in str(info.value)
    with pytest.raises(ValueError, match="known parameters: none"):
        make_scenario("normal", delay_s=1.0)


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("tip_against_wall", {"factor": 0.5}, "factor"),
        ("tip_against_wall", {"delay_s": -1.0}, "delay_s"),
        ("full_occlusion", {"ramp_s": math.nan}, "ramp_s"),
        ("perforation", {"leak_resistance_mmhg_min_per_ml": 0.0}, "leak_resistance"),
        ("slow_leak", {"ramp_s": math.inf}, "ramp_s"),
        ("slow_leak", {"final_factor": "2"}, "final_factor"),
    ],
)
def test_bad_parameter_values_name_the_field(
    name: str, params: dict[str, object], field: str
) -> None:
    with pytest.raises(ValueError, match=f"{name}.{field}"):
        make_scenario(name, **params)  # type: ignore[arg-type]


def test_runner_refuses_bad_steps() -> None:
    with pytest.raises(ValueError, match="dt_s"):
        run_scenario(FluidWorld(), make_scenario("normal"), lambda _t: 1.0, 1.0, 0.0, ManualClock())
    with pytest.raises(ValueError, match="duration_s"):
        run_scenario(
            FluidWorld(), make_scenario("normal"), lambda _t: 1.0, -1.0, DT_S, ManualClock()
        )
