"""The fibre bundle's circular field: found once on a white frame, then cropped and masked.

Everything outside the bundle's circle is dark cladding, glare from the coupler or sensor noise;
the pipeline cuts the frame to the circle's bounding square (less to filter, encode and send)
and blacks out the corners.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from rig.camera.frames import Frame, Mask


class FieldNotFound(ValueError):
    """The calibration frame shows no bright disc to take as the bundle's field."""


@dataclass(frozen=True, slots=True)
class FibreField:
    """The bundle's field in the camera's frame, in pixels."""

    centre_x_px: float
    centre_y_px: float
    radius_px: float

    @classmethod
    def locate(cls, white_frame: Frame) -> FibreField:
        """The largest bright disc of a frame of a white target (or any well-lit frame)."""
        grey = _grey(white_frame)
        # Blurred over a few cores so the honeycomb does not split the field into islands.
        smooth = cv2.GaussianBlur(grey, (0, 0), 4.0)
        _, bright = cv2.threshold(smooth, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        contours, _ = cv2.findContours(bright, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        if not contours:
            raise FieldNotFound(
                "calibration frame: no bright region; expected the bundle's lit field"
            )
        largest = max(contours, key=cv2.contourArea)
        (x, y), radius = cv2.minEnclosingCircle(largest)
        if radius < 8:
            raise FieldNotFound(
                f"calibration frame: field radius {radius:.1f} px; expected at least 8 px"
            )
        return cls(centre_x_px=float(x), centre_y_px=float(y), radius_px=float(radius))

    def crop_box(self, width_px: int, height_px: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of the field's bounding square (odd side, centred on the field's
        centre pixel), clipped to the frame."""
        half = int(np.ceil(self.radius_px))
        x, y = round(self.centre_x_px), round(self.centre_y_px)
        x0, y0 = max(0, x - half), max(0, y - half)
        x1, y1 = min(width_px, x + half + 1), min(height_px, y + half + 1)
        return x0, y0, x1, y1


class FieldCrop:
    """Crops frames of one size to the field and blacks out what lies outside the circle."""

    def __init__(self, field: FibreField, width_px: int, height_px: int) -> None:
        self.field = field
        self.box = x0, y0, x1, y1 = field.crop_box(width_px, height_px)
        self.mask: Mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        self._scaled: Mask | None = None
        centre = (field.centre_x_px - x0, field.centre_y_px - y0)
        cv2.circle(
            self.mask,
            (round(centre[0] * 16), round(centre[1] * 16)),
            round(field.radius_px * 16),
            255,
            thickness=-1,
            lineType=cv2.LINE_8,
            shift=4,
        )

    @property
    def size_px(self) -> tuple[int, int]:
        """(width, height) of the cropped frames."""
        return self.mask.shape[1], self.mask.shape[0]

    def crop(self, frame: Frame) -> Frame:
        """A view of the field's square in `frame` (no copy)."""
        x0, y0, x1, y1 = self.box
        return frame[y0:y1, x0:x1]

    def apply_mask(self, cropped: Frame) -> Frame:
        """Black outside the circle, in place; returns `cropped`. A frame scaled from the crop
        (a removal that outputs fewer pixels) gets the mask scaled to its size."""
        cv2.bitwise_and(cropped, cropped, dst=cropped, mask=self._mask_for(cropped))
        return cropped

    def _mask_for(self, frame: Frame) -> Mask:
        size = (frame.shape[1], frame.shape[0])
        if size == self.size_px:
            return self.mask
        if self._scaled is None or (self._scaled.shape[1], self._scaled.shape[0]) != size:
            self._scaled = cv2.resize(self.mask, size, interpolation=cv2.INTER_NEAREST).astype(
                np.uint8, copy=False
            )
        return self._scaled


def _grey(frame: Frame) -> Mask:
    if frame.ndim == 2:
        return frame
    grey: Mask = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.uint8, copy=False)
    return grey
