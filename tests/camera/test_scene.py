"""The simulated duct scene: deterministic per seed, lit by the LED, clouded by blood without
flow, with a papilloma that grows as the tip approaches and a basket when deployed."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.sim.camera import DuctScene, DuctSceneParams, View
from tests.camera.conftest import SEED, VIEW, Rendered, clear_scene

PAPILLOMA_DEPTH_MM = DuctSceneParams().papilloma_depth_mm


def field_mean(scene: DuctScene, frame: np.ndarray) -> float:
    b = scene.bundle
    h, w = frame.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    inside = np.hypot(xx - b.centre_x_px, yy - b.centre_y_px) < 0.9 * b.field_radius_px
    return float(frame[inside].mean())


def redness(frame: np.ndarray) -> float:
    """Red over blue, over the whole frame: blood raises it."""
    return float(frame[:, :, 2].astype(np.float64).sum() / max(1.0, frame[:, :, 0].sum()))


def test_one_seed_renders_the_same_frames_and_another_seed_does_not(rendered: Rendered) -> None:
    a, b = DuctScene(SEED), DuctScene(SEED)
    other = DuctScene(SEED + 1)
    for scene in (a, b, other):
        scene.step(0.5, saline_flowing=False)
    frames = [s.render(View(depth_mm=20.0, led_level=0.8)).copy() for s in (a, b, other)]
    assert np.array_equal(frames[0], frames[1])
    assert not np.array_equal(frames[0], frames[2])


def test_brightness_follows_the_led_level() -> None:
    scene = clear_scene(SEED)
    means = [
        field_mean(scene, scene.render(View(depth_mm=10.0, led_level=led)))
        for led in (0.0, 0.25, 0.5, 1.0)
    ]
    assert means[0] == 0.0
    assert means[1] < means[2] < means[3]
    # Linear while the brightest cores are not saturated.
    assert means[2] / means[1] == pytest.approx(2.0, rel=0.1)


def test_an_led_level_outside_0_to_1_is_refused() -> None:
    with pytest.raises(ValueError, match="led_level"):
        clear_scene(SEED).render(View(depth_mm=10.0, led_level=1.5))


def test_the_haze_clears_while_saline_flows_and_clouds_when_it_stops() -> None:
    scene = DuctScene(SEED)
    start = scene.haze
    hazy = redness(scene.render(View(depth_mm=10.0)))
    for _ in range(90):  # 3 s at 30 fps
        scene.step(1 / 30, saline_flowing=True)
    assert scene.haze < 0.2 * start
    clear = redness(scene.render(View(depth_mm=10.0)))
    assert clear < hazy
    for _ in range(150):  # 5 s without flow
        scene.step(1 / 30, saline_flowing=False)
    assert scene.haze > 0.5
    assert redness(scene.render(View(depth_mm=10.0))) > clear


def test_the_papilloma_grows_as_the_tip_approaches_and_is_gone_once_passed() -> None:
    scene = clear_scene(SEED)
    radii = []
    for ahead_mm in (10.0, 5.0, 2.0):
        where = scene.papilloma_in_view(View(depth_mm=PAPILLOMA_DEPTH_MM - ahead_mm))
        assert where is not None
        radii.append(where.radius_px)
    assert radii[0] < radii[1] < radii[2]
    assert scene.papilloma_in_view(View(depth_mm=PAPILLOMA_DEPTH_MM + 1.0)) is None


def test_the_papilloma_is_red_against_the_white_wall(rendered: Rendered) -> None:
    p = rendered.papilloma
    frame = rendered.reference
    y, x = int(p.centre_y_px), int(p.centre_x_px)
    r = int(0.5 * p.radius_px)
    lesion = frame[y - r : y + r, x - r : x + r].reshape(-1, 3).mean(axis=0)
    b, g, red = lesion
    assert red > 1.6 * g and red > 1.6 * b


def test_the_basket_shows_when_deployed() -> None:
    scene = clear_scene(SEED)
    without = scene.render(VIEW).copy()
    with_basket = scene.render(View(depth_mm=VIEW.depth_mm, basket_deployed=True)).copy()
    changed = np.any(without != with_basket, axis=2)
    b = scene.bundle
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 500
    # It comes out of the working channel, in the lower right of the field.
    assert xs.mean() > b.centre_x_px and ys.mean() > b.centre_y_px


def test_a_retrieved_lesion_leaves_the_wall_bare() -> None:
    scene = clear_scene(SEED, honeycomb=False)
    p = scene.papilloma_in_view(VIEW)
    assert p is not None
    y, x, r = int(p.centre_y_px), int(p.centre_x_px), int(0.5 * p.radius_px)

    def colour(frame: np.ndarray) -> tuple[float, float, float]:
        b, g, red = frame[y - r : y + r, x - r : x + r].reshape(-1, 3).mean(axis=0)
        return float(b), float(g), float(red)

    b, g, red = colour(scene.render(View(depth_mm=VIEW.depth_mm, lesion_present=False)))
    assert red < 1.2 * g and red < 1.2 * b  # the white wall, not the red lesion
    b, g, red = colour(scene.render(VIEW))  # the scenery redrawn with it, at the same depth
    assert red > 1.6 * g and red > 1.6 * b


def test_a_negative_step_is_refused() -> None:
    with pytest.raises(ValueError, match="dt_s"):
        DuctScene(SEED).step(-0.1, saline_flowing=True)
