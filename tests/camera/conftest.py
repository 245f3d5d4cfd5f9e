"""Rendered frames shared by the camera tests: one scene, its honeycomb-free twin, a calibration.

Session-scoped: building a scene (the bundle's 10,000 cores, the wall texture) and calibrating
the core interpolation take about a second each, and every test only reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from drivers.sim.camera import DuctScene, DuctSceneParams, PapillomaInView, View
from rig.camera.field import FibreField, FieldCrop
from rig.camera.frames import Frame
from rig.camera.honeycomb import CoreInterpolator, estimate_core_spacing_px

SEED = 7
# 2.5 mm short of the papilloma: it fills about a fifth of the field, off the axis.
VIEW = View(depth_mm=DuctSceneParams().papilloma_depth_mm - 2.5)


@dataclass(frozen=True)
class Rendered:
    """One view through the bundle, the same view without the cores, and the rig's calibration,
    all cropped to the field as the pipeline crops them."""

    scene: DuctScene
    crop: FieldCrop
    raw: Frame
    reference: Frame
    white: Frame
    core_spacing_px: float
    papilloma: PapillomaInView
    """In the cropped frame's pixels."""

    @property
    def field_in_crop(self) -> tuple[float, float, float]:
        field = self.crop.field
        x0, y0, _, _ = self.crop.box
        return field.centre_x_px - x0, field.centre_y_px - y0, field.radius_px


def clear_scene(seed: int, *, honeycomb: bool = True) -> DuctScene:
    scene = DuctScene(seed, DuctSceneParams(honeycomb=honeycomb))
    scene.haze = 0.0
    return scene


@pytest.fixture(scope="session")
def rendered() -> Rendered:
    scene = clear_scene(SEED)
    reference_scene = clear_scene(SEED, honeycomb=False)
    raw = scene.render(VIEW).copy()
    reference = reference_scene.render(VIEW).copy()
    # What the camera sees of a white target: the bundle's transmission itself.
    white_full = scene.bundle.transmission
    p = scene.params
    crop = FieldCrop(FibreField.locate(white_full), p.width_px, p.height_px)
    white = crop.crop(white_full).copy()
    papilloma = scene.papilloma_in_view(VIEW)
    assert papilloma is not None
    x0, y0, _, _ = crop.box
    return Rendered(
        scene=scene,
        crop=crop,
        raw=crop.crop(raw).copy(),
        reference=crop.crop(reference).copy(),
        white=white,
        core_spacing_px=estimate_core_spacing_px(white),
        papilloma=PapillomaInView(
            papilloma.centre_x_px - x0, papilloma.centre_y_px - y0, papilloma.radius_px
        ),
    )


@pytest.fixture(scope="session")
def core_interpolator(rendered: Rendered) -> CoreInterpolator:
    return CoreInterpolator.calibrate(rendered.white, rendered.core_spacing_px)
