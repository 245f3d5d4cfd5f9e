"""The whole operating envelope on the stepped clock: quiet on a healthy duct, never blind.

Runs `rig bench envelope`'s grid (rig/bench/envelope.py) through the rig's own controller and
interlock against the simulator's world and emulators, with the board emulator's sensor noise
and quantisation: every allowed flow (10 log-spaced points, minimum to maximum), pressure
setpoints across the allowed range, bolus rates, flow changes up and down, mode changes, and
stop then restart after 0.1 to 5 s.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from rig.bench.envelope import EnvelopeGrid, run_envelope
from rig.config import DEFAULT_PROFILE, load_profile


@pytest.fixture(scope="module")
def envelope() -> dict[str, Any]:
    profile = load_profile(DEFAULT_PROFILE)
    grid = EnvelopeGrid.for_profile(profile, flows=10, trials=2)
    logging.disable(logging.WARNING)  # every stop is logged: thousands of lines otherwise
    try:
        return asyncio.run(run_envelope(profile, grid, seed=0))
    finally:
        logging.disable(logging.NOTSET)


@pytest.mark.hazard("H24")
@pytest.mark.timeout(300)
def test_no_stop_on_a_healthy_duct_over_thirty_simulated_minutes(envelope: dict[str, Any]) -> None:
    assert envelope["simulated_minutes"] >= 30.0
    assert envelope["false_stops"] == 0, envelope["false_stop_details"]


@pytest.mark.hazard("H02", "H01")
@pytest.mark.timeout(300)
def test_wall_and_occlusion_stop_the_pump_at_every_point_of_the_grid(
    envelope: dict[str, Any],
) -> None:
    points = envelope["flows"] + envelope["pressure_setpoints"] + envelope["bolus_rates"]
    assert len(envelope["flows"]) >= 8
    assert envelope["missed_detections"] == 0
    for point in points:
        assert point["missed_wall"] == 0 and point["missed_occlusion"] == 0, point
        assert point["detect_wall_ms_p99"] is not None, point
        assert point["detect_occlusion_ms_p99"] is not None, point
        # The relief takes back what the line holds above 5 mmHg: releasing the occlusion then
        # flushes at most 5 uL into the duct (about 6 uL at 1 mL/min and 12 uL at 3 mL/min
        # without it).
        assert point["bolus_after_release_ul_max"] <= 5.0, point
        # In the irrigation back-off (above about 1.3 mL/min on the nominal duct) the flow is
        # cut as the pressure rises, and the line model can report the wall first.
        assert set(point["causes"]) <= {
            "resistance_rise",
            "resistance_limit",
            "pressure_limit",
            "bolus_pressure_cap",
            "plausibility",
        }, point
