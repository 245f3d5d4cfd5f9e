"""Automatic brightness: the field's mean brightness, and the LED level that brings it to target.

The camera process measures each frame as it captures it (`FieldMeter`: a grid of sample
points over the field, 0.1 ms a frame) and publishes the figure with the frame's stamp
(rig/camera/shared.py); the daemon's camera device reads it and sets the LED through the
interlock (rig/devices/camera.py). No pixels cross to the daemon for this.

The control (`next_level`) is a proportional step in the logarithm of the level: the picture's
brightness is proportional to the LED's level (until the brightest cores saturate), so
multiplying the level by (target / measured) ** gain closes a fraction `gain` of the error at
each step, and with gain < 1 it approaches the target from one side without overshoot. Each
step is bounded (a glare or a black frame never swings the light by more than
`max_step_permille`), a dead band keeps it still once close, and the caller steps only on a
frame captured after the last level took effect, so it never reacts to its own lag.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rig.camera.frames import Frame

FIELD_RADIUS = 0.4
"""Sampled disc, as a fraction of the frame's short side, centred: inside the bundle's field
(0.47 of the short side in the simulator, centred by the coupler on a real scope), so the dark
cladding round it does not count."""
SAMPLE_STEP_PX = 4
"""One sample every 4 px each way: ~2,000 points at 320x240, ~20,000 at 1080p; the mean over
them is the mean over the field to well under one grey level."""
_LUMA_BGR = np.array([0.114, 0.587, 0.299], np.float32)
BLACK = 1.0
"""A field darker than this (mean grey level) shows nothing to scale the level by."""


class FieldMeter:
    """The mean luma (0..255) of the central disc of frames of one size."""

    def __init__(self, width_px: int, height_px: int) -> None:
        rows = np.arange(0, height_px, SAMPLE_STEP_PX)
        cols = np.arange(0, width_px, SAMPLE_STEP_PX)
        radius = FIELD_RADIUS * min(width_px, height_px)
        inside = (
            (cols[None, :] - width_px / 2) ** 2 + (rows[:, None] - height_px / 2) ** 2
        ) <= radius**2
        self._inside: npt.NDArray[np.bool_] = inside

    def measure(self, frame: Frame) -> float:
        samples = frame[::SAMPLE_STEP_PX, ::SAMPLE_STEP_PX][self._inside]
        return float(samples.mean(axis=0) @ _LUMA_BGR)


@dataclass(frozen=True)
class BrightnessSettings:
    target: float
    """The field's mean luma to hold (0..255)."""
    start_permille: int
    """The level set when the camera connects, before anything is measured."""
    max_permille: int
    """Never brighter than this (the light at the tip warms the tissue it falls on)."""
    min_permille: int = 20
    """Never darker than this while the camera runs: a level of 0 would give nothing to scale."""
    max_step_permille: int = 150
    gain: float = 0.6
    """The fraction of the error (in log) closed at each step."""
    dead_band: float = 0.06
    """Within 6 % of the target the level stays (no hunting over noise and JPEG)."""


def next_level(level: int, measured: float, settings: BrightnessSettings) -> int:
    """The LED level (permille) to set after a frame at `level` measured `measured`."""
    base = max(level, settings.min_permille)
    if measured < BLACK:
        wanted = float(base + settings.max_step_permille)  # black: climb, by bounded steps
    else:
        ratio = settings.target / measured
        if abs(ratio - 1.0) <= settings.dead_band:
            return level
        wanted = base * ratio**settings.gain
    step = min(max(wanted - level, -settings.max_step_permille), settings.max_step_permille)
    return int(min(max(round(level + step), settings.min_permille), settings.max_permille))
