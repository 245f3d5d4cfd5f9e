"""`rig bench camera-filters`: the three honeycomb removals on rendered frames, side by side.

For one frame size: the simulated scene renders a run of frames (the tip approaching the
papilloma while the saline clears the haze); each removal processes them after the crop to the
fibre's field. Per removal:
- `ms_per_frame_p50` / `_p95`: wall time of crop, removal and mask, per frame, on this thread;
- `peak_drop_db`: fall of the honeycomb's spectral peak (rig/camera/quality.py) from the raw
  frame to the processed one, on a clear view 2.5 mm short of the papilloma;
- `edge_contrast_kept`: the papilloma's edge contrast after removal over that of the same view
  rendered without the honeycomb (1 = as good as no honeycomb at all);
- `contrast_transfer_half_lattice`: a sine grating at half the lattice frequency seen through
  the bundle, its modulation after removal over its modulation without the bundle (how much
  fine detail the removal keeps; 1 = all);
- `fixed_pattern_pct`: a white target through the bundle after removal: the spread of the
  small-scale brightness (finer than 5 core spacings), over the mean, in % (the cores' unequal
  transmission that the removal leaves).
The scene's own cost (`scene_ms_per_frame`) and the core interpolation's calibration time are
reported too. Where the camera has more than ~5 px per core (1080p), the core interpolation also
runs with a smaller output (4.5 px per core, `core_interpolation_xS`, S the scale): its image is
measured after scaling back up to the crop's size. Where PyFibreBundle (`pybundle`) is installed, its Gaussian filter, Fourier
filter and triangular interpolation (with and without numba) run on the same frames; the rig
never imports it.

Runs by hand (it measures speed: not a test). docs/camera.md has the figures.
"""

from __future__ import annotations

import importlib.util
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from drivers.sim.camera import DuctScene, DuctSceneParams, View
from rig.bench.session import percentile
from rig.camera.field import FibreField, FieldCrop
from rig.camera.frames import Frame
from rig.camera.honeycomb import (
    CoreInterpolator,
    FourierFilter,
    GaussianFilter,
    HoneycombFilter,
    estimate_core_spacing_px,
)
from rig.camera.pipeline import FibrePipeline
from rig.camera.quality import edge_contrast, honeycomb_peak_db

CHOSEN = "core_interpolation"
"""The removal the rig uses (docs/camera.md says why)."""
PYFIBREBUNDLE_EQUIVALENT = "core_interpolation_numba"
"""PyFibreBundle's fastest way of doing what CHOSEN does."""
SEED = 7
AHEAD_OF_PAPILLOMA_MM = 2.5


class _Bench:
    """A scene of one size, its honeycomb-free twin, the field, and the measured view."""

    def __init__(self, width_px: int, height_px: int, seed: int) -> None:
        params = DuctSceneParams(width_px=width_px, height_px=height_px)
        started = time.perf_counter()
        self.scene = DuctScene(seed, params)
        self.scene_build_s = time.perf_counter() - started
        reference = DuctScene(
            seed, DuctSceneParams(width_px=width_px, height_px=height_px, honeycomb=False)
        )
        self.view = View(depth_mm=params.papilloma_depth_mm - AHEAD_OF_PAPILLOMA_MM)
        self.scene.haze = reference.haze = 0.0
        white_full = self.scene.bundle.transmission
        self.crop = FieldCrop(FibreField.locate(white_full), width_px, height_px)
        self.white = self.crop.crop(white_full).copy()
        self.spacing_px = estimate_core_spacing_px(self.white)
        self.raw_full = self.scene.render(self.view).copy()
        self.raw = self.crop.crop(self.raw_full).copy()
        self.reference = self.crop.crop(reference.render(self.view)).copy()
        papilloma = self.scene.papilloma_in_view(self.view)
        assert papilloma is not None
        x0, y0, _, _ = self.crop.box
        self.papilloma = (
            papilloma.centre_x_px - x0,
            papilloma.centre_y_px - y0,
            papilloma.radius_px,
        )
        field = self.crop.field
        self.field = (field.centre_x_px - x0, field.centre_y_px - y0, field.radius_px)

    def frames(self, count: int) -> tuple[list[Frame], float]:
        """`count` frames of the tip approaching through clearing haze, and ms per render."""
        scene = DuctScene(SEED, self.scene.params)
        frames, times = [], []
        for k in range(count):
            scene.step(1 / 30, saline_flowing=True)
            started = time.perf_counter()
            frame = scene.render(View(depth_mm=self.view.depth_mm - 1.0 + 0.03 * k))
            times.append(time.perf_counter() - started)
            frames.append(frame.copy())
        return frames, 1000.0 * statistics.median(times)

    def at_crop_size(self, frame: Frame) -> Frame:
        """A removal's output shown at the crop's size (as a display would scale it up)."""
        h, w = self.raw.shape[:2]
        if frame.shape[:2] == (h, w):
            return frame
        scaled: Frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR).astype(
            np.uint8, copy=False
        )
        return scaled

    def quality(self, processed: Frame) -> dict[str, float]:
        processed = self.at_crop_size(processed)
        cx, cy, r = self.field
        peak_raw = honeycomb_peak_db(self.raw, cx, cy, r, self.spacing_px)
        peak = honeycomb_peak_db(processed, cx, cy, r, self.spacing_px)
        px, py, pr = self.papilloma
        kept = edge_contrast(processed, px, py, pr) / edge_contrast(self.reference, px, py, pr)
        return {
            "peak_drop_db": round(peak_raw - peak, 1),
            "edge_contrast_kept": round(kept, 3),
        }

    def optics(self, removal: HoneycombFilter) -> dict[str, float]:
        """What the removal does to a grating and to a white target (the bench's docstring)."""
        bundle = self.scene.bundle
        w = self.raw_full.shape[1]
        f = 0.5 * bundle.lattice_frequency_cycles_px
        grating = 128.0 + 96.0 * np.sin(2.0 * np.pi * f * np.arange(w))[None, :, None]
        seen = self.crop.crop(_through(grating, bundle.transmission)).copy()
        ideal = self.crop.crop(_through(grating, bundle.field_factor)).copy()
        inner = self._inner()
        phase = 2.0 * np.pi * f * (np.arange(seen.shape[1]) + self.crop.box[0])
        after = self.at_crop_size(removal.apply(seen))
        transfer = _modulation(after, phase, inner) / _modulation(ideal, phase, inner)
        white = self.at_crop_size(removal.apply(self.white)).astype(np.float32).mean(axis=2)
        fine = white - cv2.GaussianBlur(white, (0, 0), 5.0 * self.spacing_px)
        return {
            "contrast_transfer_half_lattice": round(float(transfer), 3),
            "fixed_pattern_pct": round(100.0 * float(fine[inner].std() / white[inner].mean()), 2),
        }

    def _inner(self) -> np.ndarray:
        cx, cy, r = self.field
        h, w = self.raw.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w]
        inside: np.ndarray = np.hypot(xx - cx, yy - cy) < 0.8 * r
        return inside


def _through(scene: np.ndarray, optics: Frame) -> Frame:
    seen: Frame = np.clip(scene * optics / 255.0, 0, 255).astype(np.uint8)
    return seen


def _modulation(frame: Frame, phase: np.ndarray, inside: np.ndarray) -> float:
    """Amplitude of the grating over the mean, from the frame's luminance inside the mask."""
    grey = frame.astype(np.float64).mean(axis=2)
    phases = np.broadcast_to(phase[None, :], grey.shape)[inside]
    values = grey[inside]
    a = 2.0 * float(np.mean(values * np.sin(phases)))
    b = 2.0 * float(np.mean(values * np.cos(phases)))
    return float(np.hypot(a, b)) / float(values.mean())


def _timed(process: Callable[[Frame], Frame], frames: list[Frame]) -> dict[str, float]:
    process(frames[0])  # warm-up: allocations, numba's JIT
    times = []
    for frame in frames:
        started = time.perf_counter()
        process(frame)
        times.append(1000.0 * (time.perf_counter() - started))
    return {
        "ms_per_frame_p50": round(statistics.median(times), 2),
        "ms_per_frame_p95": round(percentile(times, 95), 2),
    }


def run_camera_filters(
    width_px: int = 640, height_px: int = 480, frames: int = 60
) -> dict[str, Any]:
    bench = _Bench(width_px, height_px, SEED)
    rendered, scene_ms = bench.frames(frames)
    w, h = bench.crop.size_px
    started = time.perf_counter()
    interpolator = CoreInterpolator.calibrate(bench.white, bench.spacing_px)
    calibration_s = time.perf_counter() - started
    removals: dict[str, HoneycombFilter] = {
        "gaussian": GaussianFilter(bench.spacing_px),
        "fourier": FourierFilter(bench.spacing_px, w, h),
        "core_interpolation": interpolator,
    }
    # The bundle carries about one sample per core spacing: an output of ~4.5 px per core
    # keeps all of it. Only worth a line where the camera has more pixels than that.
    reduced_scale = 4.5 / bench.spacing_px
    if reduced_scale < 0.9:
        removals[f"core_interpolation_x{reduced_scale:.2f}"] = CoreInterpolator.calibrate(
            bench.white, bench.spacing_px, output_scale=reduced_scale
        )
    results: dict[str, Any] = {}
    for name, removal in removals.items():
        pipeline = FibrePipeline(bench.crop, removal)
        results[name] = {
            **_timed(pipeline.process, rendered),
            **bench.quality(pipeline.process(bench.raw_full)),
            **bench.optics(removal),
        }
    figures: dict[str, Any] = {
        "benchmark": "camera-filters",
        "frame": f"{width_px}x{height_px}",
        "field_crop": f"{w}x{h}",
        "cores": bench.scene.bundle.cores,
        "cores_found": interpolator.cores,
        "core_spacing_px": round(bench.spacing_px, 2),
        "scene_build_s": round(bench.scene_build_s, 2),
        "scene_ms_per_frame": round(scene_ms, 2),
        "core_interpolation_calibration_s": round(calibration_s, 2),
        "filters": results,
        "chosen": CHOSEN,
        "ours_ms_per_frame": results[CHOSEN]["ms_per_frame_p50"],
    }
    if importlib.util.find_spec("pybundle") is None:
        figures["pyfibrebundle"] = "not installed"
    else:
        pyfibrebundle = _pyfibrebundle(bench, rendered)
        figures["pyfibrebundle"] = pyfibrebundle
        figures["pyfibrebundle_ms_per_frame"] = pyfibrebundle[PYFIBREBUNDLE_EQUIVALENT][
            "ms_per_frame_p50"
        ]
    return figures


def _pyfibrebundle(bench: _Bench, rendered: list[Frame]) -> dict[str, Any]:
    """PyFibreBundle's three removals on the same cropped frames, with the same parameters."""
    # Optional, installed by hand (it pulls the GUI build of OpenCV: pip install --no-deps).
    import pybundle  # type: ignore[import-untyped,import-not-found,unused-ignore]

    crop = bench.crop
    spacing = bench.spacing_px
    size = crop.size_px[0]
    cropped = [crop.crop(frame) for frame in rendered]
    # The same cut-off as ours: a raised cosine from 0.45 to 0.8 of the lattice frequency,
    # which edge_filter takes as a spatial period (px) at the middle of its edge.
    f_lattice = 2.0 / (np.sqrt(3.0) * spacing)
    f_mid = 0.625 * f_lattice
    fourier = pybundle.edge_filter(size, 1.0 / f_mid, 0.35 / 0.625)
    cx, cy, r = bench.field
    started = time.perf_counter()
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        calibration = pybundle.calib_tri_interp(
            bench.white, spacing, size, centreX=cx, centreY=cy, radius=r, normalise=bench.white
        )
    calibration_s = time.perf_counter() - started

    def as_frame(image: Any) -> Frame:
        frame: Frame = np.clip(image, 0, 255).astype(np.uint8)
        return frame

    sigma = GaussianFilter(spacing).sigma_px
    methods: dict[str, Callable[[Frame], Frame]] = {
        "gaussian": lambda f: as_frame(pybundle.g_filter(f, sigma)),
        "fourier": lambda f: as_frame(pybundle.filter_image(f, fourier)),
        "core_interpolation": lambda f: as_frame(
            pybundle.recon_tri_interp(f, calibration, numba=False)
        ),
        "core_interpolation_numba": lambda f: as_frame(
            pybundle.recon_tri_interp(f, calibration, numba=True)
        ),
    }
    results: dict[str, Any] = {"core_interpolation_calibration_s": round(calibration_s, 2)}
    # Its normalisation divides by the white frame's value at each core, zero at a few cores on
    # the rim: numpy warns once per frame, and the figures are its cost, not its image.
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, method in methods.items():
            results[name] = _timed(method, cropped)
    return results


def save_before_after(directory: Path, width_px: int = 640, height_px: int = 480) -> list[Path]:
    """Writes the rendered frame before the pipeline and after it (the chosen removal), cropped
    to the field: docs/camera.md shows them."""
    bench = _Bench(width_px, height_px, SEED)
    pipeline = FibrePipeline(bench.crop, CoreInterpolator.calibrate(bench.white, bench.spacing_px))
    before = bench.crop.apply_mask(bench.raw.copy())
    after = pipeline.process(bench.raw_full)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / "camera-before.png", directory / "camera-after.png"]
    for path, image in zip(paths, (before, after), strict=True):
        cv2.imwrite(str(path), image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return paths
