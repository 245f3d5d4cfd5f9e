"""Automatic brightness: the field meter on a rendered frame, and the LED control converging
without overshoot, in bounded steps, from black and against a target it cannot reach."""

from __future__ import annotations

import numpy as np

from drivers.sim.camera.scene import DuctScene, DuctSceneParams, View
from rig.camera.brightness import BrightnessSettings, FieldMeter, next_level

SETTINGS = BrightnessSettings(target=60.0, start_permille=400, max_permille=1000)


def run(plant_gain: float, level: int, steps: int = 30) -> list[int]:
    """Levels chosen on a plant whose field brightness is proportional to the level (as the
    simulated scene's, until the brightest cores saturate at 255)."""
    levels = [level]
    for _ in range(steps):
        level = next_level(level, min(255.0, plant_gain * level), SETTINGS)
        levels.append(level)
    return levels


def test_meter_follows_the_led_and_ignores_the_dark_cladding() -> None:
    scene = DuctScene(0, DuctSceneParams(width_px=320, height_px=240))
    meter = FieldMeter(320, 240)
    dim, bright = (
        meter.measure(scene.render(View(depth_mm=29.5, led_level=led))) for led in (0.2, 0.4)
    )
    assert 5 < dim < bright and abs(bright / dim - 2.0) < 0.15, (dim, bright)
    black = np.zeros((240, 320, 3), np.uint8)
    assert meter.measure(black) == 0.0
    black[:, :20] = 255  # glare outside the field does not count
    assert meter.measure(black) == 0.0


def test_converges_from_either_side_without_overshoot() -> None:
    for plant_gain in (0.08, 0.2, 0.5):  # a dim scene, a bright one, a very bright one
        levels = run(plant_gain, SETTINGS.start_permille)
        settled = levels[-1]
        assert abs(plant_gain * settled / SETTINGS.target - 1) <= SETTINGS.dead_band
        moves = np.diff(levels)
        assert (moves >= 0).all() or (moves <= 0).all(), levels  # one direction: no hunting
        assert np.abs(moves).max() <= SETTINGS.max_step_permille
        assert (moves[-5:] == 0).all(), levels  # and still once there


def test_black_climbs_in_bounded_steps_and_the_maximum_holds() -> None:
    assert run(0.0, 0, steps=3) == [0, 150, 300, 450]  # nothing seen: up, never in one jump
    levels = run(0.05, 400)  # a target it cannot reach: to the maximum and no further
    assert levels[-1] == SETTINGS.max_permille and max(levels) == SETTINGS.max_permille
