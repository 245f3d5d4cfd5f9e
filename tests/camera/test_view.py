"""The surgeon's view in the camera process: frames from shared memory through the pipeline,
calibrated on a white target (core interpolation) or, without one, on a lit frame (Gaussian)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest

from drivers.sim.camera.scene import DuctScene, DuctSceneParams, View
from rig.camera.quality import honeycomb_peak_db
from rig.camera.shared import SharedFrames
from rig.camera.view import LiveView, ViewFrame

WIDTH, HEIGHT = 640, 480


@pytest.fixture(scope="module")
def scene() -> DuctScene:
    return DuctScene(7, DuctSceneParams(width_px=WIDTH, height_px=HEIGHT))


@pytest.fixture
def frames() -> Iterator[SharedFrames]:
    frames = SharedFrames.create(WIDTH, HEIGHT)
    yield frames
    frames.close()
    frames.unlink()


def view_of(
    frames: SharedFrames, scene: DuctScene, white: Path | None
) -> tuple[LiveView, ViewFrame]:
    """Run a LiveView over one rendered frame, captured as the capture thread would."""
    new_frame, stopping = threading.Condition(), threading.Event()
    view = LiveView(frames, new_frame, stopping, white)
    view.thread.start()
    try:
        frame = scene.render(View(depth_mm=29.5, led_level=0.6))
        deadline = time.monotonic() + 20.0
        while view.latest is None or view.pipeline is None:
            assert time.monotonic() < deadline, "no view"
            frames.begin()[:] = frame
            frames.commit(time.monotonic_ns(), brightness=60.0)
            with new_frame:
                new_frame.notify_all()
            time.sleep(0.05)
        latest = view.latest
        number = latest.info.number
        while latest.info.number == number:  # one more, made with the pipeline in place
            frames.begin()[:] = frame
            frames.commit(time.monotonic_ns(), brightness=60.0)
            with new_frame:
                new_frame.notify_all()
            time.sleep(0.05)
            assert view.latest is not None
            latest = view.latest
        return view, latest
    finally:
        stopping.set()
        view.thread.join(5.0)


def peak_db(image: ViewFrame | object, spacing_px: float) -> float:
    assert isinstance(image, ViewFrame)
    h, w = image.image.shape[:2]
    return honeycomb_peak_db(image.image, w / 2, h / 2, 0.47 * min(w, h), spacing_px)


def test_with_a_white_target_the_view_is_core_interpolated_and_the_honeycomb_gone(
    frames: SharedFrames, scene: DuctScene, tmp_path: Path
) -> None:
    white = tmp_path / "white.png"
    cv2.imwrite(str(white), scene.bundle.transmission)
    view, latest = view_of(frames, scene, white)
    assert view.method == "core_interpolation"
    assert latest.image.shape == (447, 447, 3)  # the field's square (docs/camera.md)
    raw_crop = view.pipeline.crop.crop(scene.render(View(depth_mm=29.5, led_level=0.6)))  # type: ignore[union-attr]
    raw = ViewFrame(latest.info, raw_crop.copy())
    assert peak_db(raw, 4.3) - peak_db(latest, 4.3) >= 20.0
    assert view.figures()["ms_p50"] is not None


def test_without_one_the_gaussian_on_the_field_of_a_lit_frame(
    frames: SharedFrames, scene: DuctScene
) -> None:
    view, latest = view_of(frames, scene, None)
    assert view.method == "gaussian" and abs(latest.image.shape[0] - 447) <= 4
