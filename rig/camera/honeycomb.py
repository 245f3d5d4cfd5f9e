"""Honeycomb removal: three ways to take the fibre bundle's core pattern out of a frame.

A fibrescope's image reaches the camera through about 10,000 cores; between them the cladding is
dark, so every frame carries a hexagonal pattern of bright dots at the core spacing d. Its
spectrum has six peaks at the lattice frequency 2 / (√3·d) cycles/px (and their harmonics);
the image itself, sampled by the cores, holds nothing finer than that. Three ways to remove it:

- `GaussianFilter`: a low-pass blur of sigma ≈ 0.45·d. One OpenCV call, separable.
- `FourierFilter`: a radial low-pass in the Fourier domain with a raised-cosine edge below the
  lattice frequency (an annulus that removes the peaks and all beyond). A forward and an inverse
  FFT per channel.
- `CoreInterpolator`: find the cores once on a white frame, triangulate them (Delaunay), and
  for each frame read each core's intensity and interpolate linearly across the triangles. Two
  sparse matrix products per frame, both precomputed at calibration.

docs/camera.md compares them on rendered frames (cost, residual honeycomb, papilloma edge) and
says which the rig uses and why. All of them work on a frame already cropped to the field
(`FieldCrop`); none of them owns threads or I/O.
"""

from __future__ import annotations

import math
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt
import scipy.sparse
from scipy.spatial import Delaunay

from rig.camera.frames import Frame, luminance


class CalibrationError(ValueError):
    """The calibration frame does not show a bundle's cores as expected."""


class HoneycombFilter(Protocol):
    name: str

    def apply(self, frame: Frame) -> Frame:
        """The frame without the honeycomb, a new array of the same type; of the same size
        unless the removal was made to output fewer pixels (`CoreInterpolator`)."""
        ...


def lattice_frequency_cycles_px(core_spacing_px: float) -> float:
    """Spatial frequency of the first spectral peaks of a hexagonal lattice of that spacing."""
    return 2.0 / (math.sqrt(3.0) * core_spacing_px)


def estimate_core_spacing_px(frame: Frame) -> float:
    """The core spacing from the strongest ring of the frame's power spectrum.

    Works on any frame of the bundle (a white target is best); the frame should be cropped to
    the field. Searches spacings of 2.5 to 40 px.
    """
    grey = luminance(frame)
    grey -= float(grey.mean())
    h, w = grey.shape
    window = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    power = np.abs(np.fft.rfft2(grey * window)) ** 2
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    radius = np.hypot(fx, fy)
    bins = np.linspace(0.0, 0.5, 201)
    which = np.digitize(radius.ravel(), bins)
    sums = np.bincount(which, weights=power.ravel(), minlength=bins.size + 1)[1 : bins.size]
    counts = np.maximum(np.bincount(which, minlength=bins.size + 1)[1 : bins.size], 1)
    profile = sums / counts
    centres = 0.5 * (bins[:-1] + bins[1:])
    # A hexagonal lattice of spacing 2.5..40 px has its first peak at 0.46..0.029 cycles/px.
    search = (centres > 0.029) & (centres < 0.47)
    peak = float(centres[search][np.argmax(profile[search])])
    return 2.0 / (math.sqrt(3.0) * peak)


class GaussianFilter:
    """Blurs with sigma = `sigma_per_spacing` x the core spacing (0.45: the peaks fall ~46 dB)."""

    name = "gaussian"

    def __init__(self, core_spacing_px: float, sigma_per_spacing: float = 0.45) -> None:
        self.sigma_px = sigma_per_spacing * core_spacing_px

    def apply(self, frame: Frame) -> Frame:
        blurred: Frame = cv2.GaussianBlur(frame, (0, 0), self.sigma_px).astype(np.uint8, copy=False)
        return blurred


class FourierFilter:
    """A radial low-pass in the Fourier domain, raised-cosine from `pass_fraction` to
    `stop_fraction` of the lattice frequency; frames of one size (the mask is made once)."""

    name = "fourier"

    def __init__(
        self,
        core_spacing_px: float,
        width_px: int,
        height_px: int,
        pass_fraction: float = 0.45,
        stop_fraction: float = 0.8,
    ) -> None:
        if not 0.0 < pass_fraction < stop_fraction:
            raise ValueError(
                f"pass_fraction = {pass_fraction}, stop_fraction = {stop_fraction}: expected "
                "0 < pass_fraction < stop_fraction"
            )
        # cv2.dft is fastest on sizes of small prime factors; pad to one and crop back.
        self.size_px = (width_px, height_px)
        self._padded = (cv2.getOptimalDFTSize(height_px), cv2.getOptimalDFTSize(width_px))
        f_lattice = lattice_frequency_cycles_px(core_spacing_px)
        f_pass, f_stop = pass_fraction * f_lattice, stop_fraction * f_lattice
        fy = np.fft.fftfreq(self._padded[0])[:, None]
        fx = np.fft.fftfreq(self._padded[1])[None, :]
        radius = np.hypot(fx, fy)
        edge = np.clip((radius - f_pass) / (f_stop - f_pass), 0.0, 1.0)
        gain = (0.5 * (1.0 + np.cos(math.pi * edge))).astype(np.float32)
        # cv2.dft's complex output interleaves (re, im): one gain for both.
        self._gain = np.ascontiguousarray(np.repeat(gain[:, :, None], 2, axis=2))

    def apply(self, frame: Frame) -> Frame:
        if (frame.shape[1], frame.shape[0]) != self.size_px:
            raise ValueError(
                f"frame of {frame.shape[1]}x{frame.shape[0]} px: this filter was made for "
                f"{self.size_px[0]}x{self.size_px[1]}"
            )
        h, w = frame.shape[:2]
        ph, pw = self._padded
        out = np.empty_like(frame)
        channels = [frame] if frame.ndim == 2 else [frame[:, :, c] for c in range(frame.shape[2])]
        for c, channel in enumerate(channels):
            padded = np.zeros((ph, pw), np.float32)
            # Replicate the edge into the padding so the wrap-around does not ring.
            padded[:] = cv2.copyMakeBorder(
                channel.astype(np.float32), 0, ph - h, 0, pw - w, cv2.BORDER_REFLECT
            )
            spectrum = cv2.dft(padded, flags=cv2.DFT_COMPLEX_OUTPUT)
            spectrum *= self._gain
            back = cv2.dft(spectrum, flags=cv2.DFT_INVERSE | cv2.DFT_SCALE | cv2.DFT_REAL_OUTPUT)
            result = np.clip(back[:h, :w], 0, 255).astype(np.uint8)
            if frame.ndim == 2:
                out[:] = result
            else:
                out[:, :, c] = result
        return out


class CoreInterpolator:
    """Reads each core's intensity and interpolates linearly between cores (Delaunay).

    `calibrate` finds the cores on a frame of a white target and precomputes two sparse
    matrices: one averages the pixels of each core (and flattens the cores' unequal
    transmission, `flatten`), one spreads the cores' values over the triangles. Per frame that
    is two sparse products. Pixels outside the cores' hull are black.

    The output may be smaller than the input (`output_scale` < 1): 10,000 cores carry about
    110 samples across the field, so a 1080p camera's 1000-px field holds 9 px per core and
    an output of half that size loses nothing the bundle carried, at a quarter of the cost.
    """

    name = "core_interpolation"

    def __init__(
        self,
        core_x_px: npt.NDArray[np.float32],
        core_y_px: npt.NDArray[np.float32],
        width_px: int,
        height_px: int,
        core_spacing_px: float,
        output_scale: float = 1.0,
    ) -> None:
        if core_x_px.size < 3:
            raise CalibrationError(f"{core_x_px.size} cores found: expected at least 3")
        if not 0.0 < output_scale <= 1.0:
            raise ValueError(f"output_scale = {output_scale}: expected above 0, at most 1")
        self.core_x_px, self.core_y_px = core_x_px, core_y_px
        self.size_px = (width_px, height_px)
        self.output_size_px = (round(width_px * output_scale), round(height_px * output_scale))
        self._sample = _core_sampling_matrix(
            core_x_px, core_y_px, width_px, height_px, core_spacing_px
        )
        self._spread = _triangle_interpolation_matrix(
            core_x_px, core_y_px, self.output_size_px, output_scale
        )

    @property
    def cores(self) -> int:
        return int(self.core_x_px.size)

    @classmethod
    def calibrate(
        cls, white_frame: Frame, core_spacing_px: float, output_scale: float = 1.0
    ) -> CoreInterpolator:
        """Finds the cores as the local maxima of a frame of a white target (cropped to the field)."""
        xs, ys = find_cores(white_frame, core_spacing_px)
        h, w = white_frame.shape[:2]
        interpolator = cls(xs, ys, w, h, core_spacing_px, output_scale)
        interpolator.flatten(white_frame)
        return interpolator

    def flatten(self, white_frame: Frame) -> None:
        """Flat-field: scale each core so that the white target comes out uniform.

        Cores transmit unequally and the field is darker at its rim; dividing by each core's
        white value removes both (the fixed pattern a blur leaves behind), at no cost per frame:
        the scale is folded into the sampling matrix. The mean level is kept.
        """
        white = self._sample @ luminance(white_frame).reshape(-1, 1)
        white = np.maximum(white[:, 0], 1.0)
        scale = (float(white.mean()) / white).astype(np.float32)
        self._sample = scipy.sparse.csr_array(scipy.sparse.diags_array(scale) @ self._sample)

    def apply(self, frame: Frame) -> Frame:
        """The frame without the honeycomb, at `output_size_px`."""
        if (frame.shape[1], frame.shape[0]) != self.size_px:
            raise ValueError(
                f"frame of {frame.shape[1]}x{frame.shape[0]} px: calibrated for "
                f"{self.size_px[0]}x{self.size_px[1]}"
            )
        channels = 1 if frame.ndim == 2 else frame.shape[2]
        core_values = self._sample @ frame.reshape(-1, channels).astype(np.float32)
        spread = self._spread @ core_values
        # Saturating conversion in one pass (np.clip + astype is two, and slower).
        out: Frame = cv2.convertScaleAbs(spread).astype(np.uint8, copy=False)
        w, h = self.output_size_px
        return out.reshape((h, w) if frame.ndim == 2 else (h, w, channels))


def find_cores(
    white_frame: Frame, core_spacing_px: float
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Core centres (x, y) in px: regional maxima of the lightly smoothed frame, in its bright
    part, merged within a third of the spacing and taken at their centroids."""
    grey = luminance(white_frame)
    smooth = cv2.GaussianBlur(grey, (0, 0), max(0.5, core_spacing_px / 5.0))
    dilated = cv2.dilate(smooth, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    lit = smooth > 0.25 * float(np.percentile(smooth, 99))
    maxima = ((smooth >= dilated) & lit).astype(np.uint8)
    size = max(1, math.ceil(core_spacing_px / 3.0))
    merged = cv2.dilate(maxima, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
    count, _, stats, centroids = cv2.connectedComponentsWithStats(merged, connectivity=8)
    # Label 0 is the background; a "core" larger than a spacing squared is a flat bright patch.
    keep = np.arange(count) > 0
    keep &= stats[:, cv2.CC_STAT_AREA] < core_spacing_px**2
    if keep.sum() < 3:
        raise CalibrationError(
            f"{int(keep.sum())} cores found at a spacing of {core_spacing_px:.2f} px: expected a "
            "frame of a white target through the bundle"
        )
    return centroids[keep, 0].astype(np.float32), centroids[keep, 1].astype(np.float32)


def _core_sampling_matrix(
    xs: npt.NDArray[np.float32],
    ys: npt.NDArray[np.float32],
    width_px: int,
    height_px: int,
    core_spacing_px: float,
) -> scipy.sparse.csr_array:
    """(cores x pixels): each row averages the pixels within 0.35 spacing of a core's centre."""
    reach = max(1.0, 0.35 * core_spacing_px)
    span = math.ceil(reach)
    oy, ox = np.mgrid[-span : span + 1, -span : span + 1]
    rows, cols, weights = [], [], []
    for dy, dx in zip(oy.ravel(), ox.ravel(), strict=True):
        px = np.round(xs).astype(np.int64) + int(dx)
        py = np.round(ys).astype(np.int64) + int(dy)
        near = np.hypot(px - xs, py - ys) <= reach
        near &= (px >= 0) & (px < width_px) & (py >= 0) & (py < height_px)
        rows.append(np.nonzero(near)[0])
        cols.append(py[near] * width_px + px[near])
        weights.append(np.ones(int(near.sum()), np.float32))
    row = np.concatenate(rows)
    matrix = scipy.sparse.csr_array(
        (np.concatenate(weights), (row, np.concatenate(cols))),
        shape=(xs.size, width_px * height_px),
    )
    per_core = np.maximum(np.bincount(row, minlength=xs.size), 1).astype(np.float32)
    return scipy.sparse.csr_array(scipy.sparse.diags_array(1.0 / per_core) @ matrix)


def _triangle_interpolation_matrix(
    xs: npt.NDArray[np.float32],
    ys: npt.NDArray[np.float32],
    output_size_px: tuple[int, int],
    output_scale: float,
) -> scipy.sparse.csr_array:
    """(output pixels x cores): each output pixel's barycentric weights on the corners of the
    triangle that holds its centre in the input's coordinates."""
    triangulation = Delaunay(np.column_stack([xs, ys]).astype(np.float64))
    width_px, height_px = output_size_px
    yy, xx = np.mgrid[0:height_px, 0:width_px]
    grid = np.column_stack([xx.ravel(), yy.ravel()]).astype(np.float64)
    points = (grid + 0.5) / output_scale - 0.5
    simplex = triangulation.find_simplex(points)
    inside = np.nonzero(simplex >= 0)[0]
    s = simplex[inside]
    transform = triangulation.transform[s]
    b = np.einsum("nij,nj->ni", transform[:, :2, :], points[inside] - transform[:, 2, :])
    bary = np.column_stack([b, 1.0 - b.sum(axis=1)])
    corners = triangulation.simplices[s]
    matrix = scipy.sparse.csr_array(
        (
            bary.ravel().astype(np.float32),
            (np.repeat(inside, 3), corners.ravel()),
        ),
        shape=(width_px * height_px, xs.size),
    )
    return matrix
