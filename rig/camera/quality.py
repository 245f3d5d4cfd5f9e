"""Image measures for the honeycomb removal: residual pattern and edge contrast.

- `honeycomb_peak_db`: the strongest spectral power in the ring at the bundle's lattice
  frequency (0.8 to 1.2 x 2 / (√3·d) cycles/px), relative to the power at zero frequency, in
  dB. The luminance is windowed by a circular taper that ends inside the field, so the field's
  rim (a sharp edge with power at every frequency) does not count as honeycomb. A removal's
  effect is the fall of this figure from the raw frame to the filtered one.
- `edge_contrast`: the papilloma's contrast against the wall round it, (L_out − L_in) /
  (L_out + L_in), with L_in the mean luminance of the ring 0.7 to 0.95 of its radius and L_out
  of the ring 1.05 to 1.3 of its radius: rings close to the edge, so that a filter that smears
  the lesion into the wall lowers it.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from rig.camera.frames import Frame, luminance
from rig.camera.honeycomb import lattice_frequency_cycles_px

_RING = (0.8, 1.2)


def honeycomb_peak_db(
    frame: Frame,
    centre_x_px: float,
    centre_y_px: float,
    field_radius_px: float,
    core_spacing_px: float,
) -> float:
    """Peak power at the lattice frequency over the power at zero frequency, in dB."""
    power, radius = _power_spectrum(frame, centre_x_px, centre_y_px, field_radius_px)
    f_lattice = lattice_frequency_cycles_px(core_spacing_px)
    ring = (radius >= _RING[0] * f_lattice) & (radius <= _RING[1] * f_lattice)
    return 10.0 * math.log10(float(power[ring].max()) / float(power[0, 0]))


def edge_contrast(frame: Frame, centre_x_px: float, centre_y_px: float, radius_px: float) -> float:
    """(L_out − L_in) / (L_out + L_in) across a round object's edge (see the module's doc)."""
    grey = luminance(frame)
    h, w = grey.shape
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(xx - centre_x_px, yy - centre_y_px) / radius_px
    inner = float(grey[(r >= 0.7) & (r <= 0.95)].mean())
    outer = float(grey[(r >= 1.05) & (r <= 1.3)].mean())
    return (outer - inner) / (outer + inner)


def _power_spectrum(
    frame: Frame, centre_x_px: float, centre_y_px: float, field_radius_px: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """|FFT|² of the tapered luminance, and each bin's radial frequency in cycles/px."""
    grey = luminance(frame)
    window = _circular_taper(grey.shape, centre_x_px, centre_y_px, 0.85 * field_radius_px)
    power: npt.NDArray[np.float64] = np.abs(np.fft.rfft2(grey * window)).astype(np.float64) ** 2
    h, w = grey.shape
    radius = np.hypot(np.fft.rfftfreq(w)[None, :], np.fft.fftfreq(h)[:, None])
    return power, radius


def _circular_taper(
    shape: tuple[int, ...], centre_x_px: float, centre_y_px: float, radius_px: float
) -> npt.NDArray[np.float32]:
    """1 inside 60 % of the radius, a raised cosine down to 0 at the radius."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    r = np.hypot(xx - centre_x_px, yy - centre_y_px) / radius_px
    edge = np.clip((r - 0.6) / 0.4, 0.0, 1.0)
    taper: npt.NDArray[np.float32] = (0.5 * (1.0 + np.cos(math.pi * edge))).astype(np.float32)
    return taper
