"""Each stop proven on its own: the others are set to their hard bounds (as loose as any profile
may make them), so the stop under test is the only one that can act.

The stops back each other up on purpose; these tests are what fail if one of them is removed.
"""

from __future__ import annotations

import math

import pytest

from drivers.sim.world import FluidWorld, FluidWorldParams
from rig.config import LimitsConfig
from rig.fluid.events import StopCause
from rig.safety.supervisors import PlausibilitySettings, Tolerance
from tests.fluid.plant import Plant

pytestmark = pytest.mark.hazard("H01", "H02")

LOOSE = {
    "max_pressure_mmhg": 150.0,
    "irrigation_pressure_cap_mmhg": 149.0,
    "backoff_start_mmhg": 148.0,
    "board_cutoff_mmhg": 300.0,
    "max_resistance_mmhg_min_per_ml": 200.0,
    "max_resistance_rise_mmhg_min_per_ml_per_s": 500.0,
}


# The line-model plausibility check also stops a duct whose pressure leaves the model's
# envelope: here it is moved out of the way so that each fluid stop is seen on its own.
NO_MODEL_CHECK = PlausibilitySettings(pressure_model_mmhg=Tolerance(1000.0, 10.0))


def limits(**tight: float) -> LimitsConfig:
    return LimitsConfig(**{**LOOSE, **tight})


def plant_with(limits: LimitsConfig) -> Plant:
    return Plant(limits, plausibility=NO_MODEL_CHECK)


async def _irrigate_into(
    plant: Plant, tip_resistance: float, ramp_s: float, seconds: float
) -> None:
    plant.controller.irrigate(1.0)
    await plant.run_for(1.5)
    plant.world.set_tip_resistance_target(tip_resistance, ramp_s=ramp_s)
    await plant.run_for(seconds)


async def test_the_pressure_limit_alone_stops_an_occlusion() -> None:
    plant = plant_with(
        limits(max_pressure_mmhg=40.0, irrigation_pressure_cap_mmhg=39.0, backoff_start_mmhg=38.0)
    )
    plant.controller.irrigate(1.0)
    await plant.run_for(1.5)
    plant.world.occlude()
    await plant.run_for(2.0)
    assert [e.cause for e in plant.events] == [StopCause.PRESSURE_LIMIT]
    assert plant.world.line_pressure_mmhg < 45.0


async def test_the_resistance_limit_alone_stops_a_slowly_tightening_duct() -> None:
    # A 4 s ramp keeps the rise rate under even a tight rise limit; only the level trips.
    plant = plant_with(limits(max_resistance_mmhg_min_per_ml=40.0))
    await _irrigate_into(plant, 60.0, ramp_s=4.0, seconds=8.0)
    assert [e.cause for e in plant.events] == [StopCause.RESISTANCE_LIMIT]
    resistance = plant.events[0].figures["resistance_mmhg_min_per_ml"]
    assert isinstance(resistance, float) and 40.0 <= resistance < 45.0


async def test_the_rise_limit_alone_stops_a_wall_before_the_level_is_reached() -> None:
    plant = plant_with(limits(max_resistance_rise_mmhg_min_per_ml_per_s=25.0))
    await _irrigate_into(plant, 180.0, ramp_s=0.1, seconds=2.0)
    assert [e.cause for e in plant.events] == [StopCause.RESISTANCE_RISE]
    pressure = plant.events[0].figures["pressure_mmhg"]
    assert isinstance(pressure, float) and pressure < 30.0


async def test_with_every_stop_at_its_hard_bound_the_wall_is_still_stopped_by_pressure() -> None:
    """Even the loosest profile allowed stops a full occlusion, at the hard pressure bound.

    The simulated duct perforates above 120 mmHg (docs/simulator.md), below the configuration's
    hard bound of 150 mmHg (clinical.md's flushing peaks): a conflict for clinical review. Here
    the duct is made unbreakable so the test shows what the bound itself guarantees.
    """
    plant = plant_with(limits())
    plant.world = FluidWorld(
        FluidWorldParams(perforation_pressure_mmhg=math.inf), start_time_s=plant.clock.monotonic()
    )
    plant.controller.irrigate(1.0)
    await plant.run_for(1.5)
    plant.world.occlude()
    await plant.run_for(5.0)
    assert plant.events and plant.events[0].cause in {
        StopCause.PRESSURE_LIMIT,
        StopCause.RESISTANCE_LIMIT,
    }
    assert plant.world.line_pressure_mmhg <= 155.0
