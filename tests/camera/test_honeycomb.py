"""Honeycomb removal on a rendered frame: the core pattern goes, the papilloma's edge stays.

The issue's done-criterion: "the spectral peak at the core spacing falls by at least 20 dB
after removal, while the papilloma's edge contrast stays". The measures are in
rig/camera/quality.py; "stays" here means at least 70 % of the edge contrast of the same view
rendered without the honeycomb (the best any removal could do).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.spatial import cKDTree

from rig.camera.field import FibreField
from rig.camera.honeycomb import (
    CoreInterpolator,
    FourierFilter,
    GaussianFilter,
    HoneycombFilter,
    find_cores,
)
from rig.camera.quality import edge_contrast, honeycomb_peak_db
from tests.camera.conftest import Rendered

MIN_PEAK_DROP_DB = 20.0
MIN_EDGE_CONTRAST_KEPT = 0.70


def peak_db(rendered: Rendered, frame: np.ndarray) -> float:
    cx, cy, radius = rendered.field_in_crop
    return honeycomb_peak_db(frame, cx, cy, radius, rendered.core_spacing_px)


def contrast(rendered: Rendered, frame: np.ndarray) -> float:
    p = rendered.papilloma
    return edge_contrast(frame, p.centre_x_px, p.centre_y_px, p.radius_px)


def make_filter(
    name: str, rendered: Rendered, core_interpolator: CoreInterpolator
) -> HoneycombFilter:
    h, w = rendered.raw.shape[:2]
    filters: dict[str, HoneycombFilter] = {
        "gaussian": GaussianFilter(rendered.core_spacing_px),
        "fourier": FourierFilter(rendered.core_spacing_px, w, h),
        "core_interpolation": core_interpolator,
    }
    return filters[name]


def test_the_raw_frame_carries_a_honeycomb_the_reference_does_not(rendered: Rendered) -> None:
    """Without this the removal test below would prove nothing."""
    assert peak_db(rendered, rendered.raw) > peak_db(rendered, rendered.reference) + 40.0


@pytest.mark.parametrize("name", ["gaussian", "fourier", "core_interpolation"])
def test_removal_drops_the_core_peak_20_db_and_keeps_the_papilloma_edge(
    rendered: Rendered, core_interpolator: CoreInterpolator, name: str, tmp_path: Path
) -> None:
    honeycomb = make_filter(name, rendered, core_interpolator)
    after = rendered.crop.apply_mask(honeycomb.apply(rendered.raw))

    drop_db = peak_db(rendered, rendered.raw) - peak_db(rendered, after)
    assert drop_db >= MIN_PEAK_DROP_DB, f"{name}: the core peak fell {drop_db:.1f} dB"
    kept = contrast(rendered, after) / contrast(rendered, rendered.reference)
    assert kept >= MIN_EDGE_CONTRAST_KEPT, f"{name}: {kept:.0%} of the edge contrast kept"

    # The artefacts: what the camera gave and what the surgeon would see.
    assert cv2.imwrite(str(tmp_path / "before.png"), rendered.raw)
    assert cv2.imwrite(str(tmp_path / f"after_{name}.png"), after)


def test_blurring_the_papilloma_away_fails_the_edge_criterion(rendered: Rendered) -> None:
    """The edge measure is not blind: a blur five times too wide loses the papilloma's edge."""
    smeared = rendered.crop.apply_mask(
        GaussianFilter(rendered.core_spacing_px, sigma_per_spacing=5.0).apply(rendered.raw)
    )
    kept = contrast(rendered, smeared) / contrast(rendered, rendered.reference)
    assert kept < MIN_EDGE_CONTRAST_KEPT


def test_the_field_is_found_on_a_white_frame(rendered: Rendered) -> None:
    bundle = rendered.scene.bundle
    field = FibreField.locate(bundle.transmission)
    assert abs(field.centre_x_px - bundle.centre_x_px) < 1.5
    assert abs(field.centre_y_px - bundle.centre_y_px) < 1.5
    assert field.radius_px == pytest.approx(bundle.field_radius_px, rel=0.03)


def test_the_core_spacing_is_read_from_the_spectrum(rendered: Rendered) -> None:
    assert rendered.core_spacing_px == pytest.approx(
        rendered.scene.bundle.core_spacing_px, rel=0.03
    )


def test_the_cores_are_found_where_the_bundle_has_them(rendered: Rendered) -> None:
    bundle = rendered.scene.bundle
    x0, y0, _, _ = rendered.crop.box
    xs, ys = find_cores(rendered.white, rendered.core_spacing_px)
    assert 0.9 * bundle.cores <= xs.size <= bundle.cores
    truth = cKDTree(np.column_stack([bundle.core_x_px - x0, bundle.core_y_px - y0]))
    distance, nearest = truth.query(np.column_stack([xs, ys]))
    # Each found core is a different core of the bundle, placed to within pixel quantisation
    # (at 4.3 px spacing a core's peak is a pixel or two).
    assert np.unique(nearest).size == xs.size
    assert float(np.median(distance)) < 0.2 * bundle.core_spacing_px
    assert float(np.percentile(distance, 95)) < 0.3 * bundle.core_spacing_px


def test_core_interpolation_flattens_the_white_target(
    rendered: Rendered, core_interpolator: CoreInterpolator
) -> None:
    """Unequal cores and the rim's vignetting are divided out: a white target comes out even."""
    cx, cy, radius = rendered.field_in_crop
    out = core_interpolator.apply(rendered.white).astype(np.float32)
    h, w = out.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    inner = np.hypot(xx - cx, yy - cy) < 0.9 * radius
    grey = out[inner].mean(axis=1)
    assert float(grey.std() / grey.mean()) < 0.03


def test_a_filter_refuses_a_frame_of_another_size(
    rendered: Rendered, core_interpolator: CoreInterpolator
) -> None:
    h, w = rendered.raw.shape[:2]
    small = rendered.raw[: h // 2, : w // 2]
    with pytest.raises(ValueError, match="calibrated for"):
        core_interpolator.apply(small)
    with pytest.raises(ValueError, match="made for"):
        FourierFilter(rendered.core_spacing_px, w, h).apply(small)


def test_core_interpolation_can_output_fewer_pixels_and_the_mask_follows(
    rendered: Rendered,
) -> None:
    smaller = CoreInterpolator.calibrate(rendered.white, rendered.core_spacing_px, output_scale=0.5)
    h, w = rendered.raw.shape[:2]
    out = rendered.crop.apply_mask(smaller.apply(rendered.raw))
    assert out.shape == (round(h * 0.5), round(w * 0.5), 3)
    assert out[0, 0].tolist() == [0, 0, 0]  # a corner: outside the field
    centre = out[out.shape[0] // 2 - 5 : out.shape[0] // 2 + 5, out.shape[1] // 2 - 5 :][:10, :10]
    assert centre.any()
