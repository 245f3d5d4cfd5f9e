"""The fibrescope's image bundle, as the camera on its eyepiece sees it.

A coherent bundle of about 10,000 cores packed in a hexagon-like lattice carries the image from
the scope tip to the eyepiece. Each core transmits the light that falls on it; the cladding
between cores is dark. On the camera this is the honeycomb: bright dots on a dark mesh, inside
the bundle's circular field, darker towards the rim (vignetting). Real bundles are not perfect
lattices, so the core positions are jittered and each core's transmission varies a little.

Built once per frame size and seed; `transmission` is the per-pixel factor the scene is
multiplied by (uint8, 255 = full transmission), so rendering costs one multiply per frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

_SUBPIXEL_SHIFT = 4  # cv2 drawing in 1/16 px, so that core positions are not rounded to pixels


@dataclass(frozen=True, slots=True)
class BundleParams:
    cores: int = 10_000
    """Cores in the bundle (issue 8: a fibrescope of about 10,000)."""
    field_radius_fraction: float = 0.47
    """Radius of the circular field, as a fraction of the frame's smaller side."""
    core_fill: float = 0.62
    """Core diameter over core spacing: the rest is dark cladding."""
    position_jitter: float = 0.05
    """Standard deviation of the core positions, as a fraction of the spacing."""
    transmission_spread: float = 0.08
    """Standard deviation of the cores' transmission (1 = nominal)."""
    cladding_level: float = 0.06
    """Light leaking through the cladding, relative to a core."""
    vignetting: float = 0.45
    """Loss of brightness at the rim of the field, relative to its centre."""


@dataclass(frozen=True, slots=True)
class FibreBundle:
    """Where the cores are and what the bundle does to each pixel of a frame."""

    width_px: int
    height_px: int
    centre_x_px: float
    centre_y_px: float
    field_radius_px: float
    core_spacing_px: float
    core_x_px: npt.NDArray[np.float32]
    core_y_px: npt.NDArray[np.float32]
    transmission: npt.NDArray[np.uint8]
    """HxWx3 factor applied to the scene: cores, cladding, vignetting, black outside the field."""
    field_factor: npt.NDArray[np.uint8]
    """HxWx3 factor of the same optics without the cores, passing the same light on average:
    the honeycomb-free reference."""

    @property
    def cores(self) -> int:
        return int(self.core_x_px.size)

    @property
    def lattice_frequency_cycles_px(self) -> float:
        """Spatial frequency of the honeycomb's first spectral peaks (hexagonal lattice)."""
        return 2.0 / (math.sqrt(3.0) * self.core_spacing_px)

    @classmethod
    def build(
        cls, width_px: int, height_px: int, seed: int, params: BundleParams | None = None
    ) -> FibreBundle:
        p = params or BundleParams()
        rng = np.random.default_rng(seed)
        radius = p.field_radius_fraction * min(width_px, height_px)
        # A hexagonal lattice of spacing d puts one core in (√3/2)·d² of the field's area.
        spacing = math.sqrt(math.pi * radius * radius / p.cores / (math.sqrt(3.0) / 2.0))
        cx, cy = (width_px - 1) / 2.0, (height_px - 1) / 2.0
        xs, ys = _hex_lattice(spacing, radius)
        xs = xs + rng.normal(0.0, p.position_jitter * spacing, xs.size)
        ys = ys + rng.normal(0.0, p.position_jitter * spacing, ys.size)
        inside = np.hypot(xs, ys) <= radius - 0.5 * spacing
        xs, ys = xs[inside] + cx, ys[inside] + cy
        gains = np.clip(rng.normal(1.0, p.transmission_spread, xs.size), 0.5, 1.2)

        cores = np.zeros((height_px, width_px), np.float32)
        scale = 1 << _SUBPIXEL_SHIFT
        core_radius = max(1, round(0.5 * p.core_fill * spacing * scale))
        for x, y, gain in zip(xs, ys, gains, strict=True):
            cv2.circle(
                cores,
                (round(float(x) * scale), round(float(y) * scale)),
                core_radius,
                float(gain),
                thickness=-1,
                lineType=cv2.LINE_AA,
                shift=_SUBPIXEL_SHIFT,
            )
        # The cores' light spreads a little (modes, the camera's optics): soft dots, not discs.
        cores = cv2.GaussianBlur(cores, (0, 0), 0.12 * spacing).astype(np.float32)
        cores = np.maximum(cores, p.cladding_level)

        yy, xx = np.mgrid[0:height_px, 0:width_px].astype(np.float32)
        r = np.hypot(xx - cx, yy - cy) / radius
        field = np.clip((1.0 - p.vignetting * r * r) * np.clip((1.0 - r) * radius, 0.0, 1.0), 0, 1)
        cores /= float(cores.max())
        honeycomb = cores * field * 255.0
        # The reference without cores passes the same light on average: the honeycomb takes
        # detail away, not brightness.
        mean_transmission = float(cores[r < 0.9].mean())
        return cls(
            width_px=width_px,
            height_px=height_px,
            centre_x_px=cx,
            centre_y_px=cy,
            field_radius_px=radius,
            core_spacing_px=spacing,
            core_x_px=xs.astype(np.float32),
            core_y_px=ys.astype(np.float32),
            transmission=_three_channels(honeycomb),
            field_factor=_three_channels(field * mean_transmission * 255.0),
        )


def _hex_lattice(
    spacing: float, radius: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Points of a hexagonal lattice of `spacing` covering a disc of `radius`, centred on 0."""
    row_pitch = spacing * math.sqrt(3.0) / 2.0
    rows = math.ceil(radius / row_pitch) + 1
    cols = math.ceil(radius / spacing) + 1
    j, i = np.mgrid[-rows : rows + 1, -cols : cols + 1]
    xs = (i + 0.5 * (j % 2)) * spacing
    ys = j * row_pitch
    return xs.ravel().astype(np.float64), ys.ravel().astype(np.float64)


def _three_channels(factor: npt.NDArray[np.floating]) -> npt.NDArray[np.uint8]:
    single = np.round(factor).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(single[:, :, None], 3, axis=2))
