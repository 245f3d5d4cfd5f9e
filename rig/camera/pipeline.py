"""One frame through the pipeline: crop to the fibre's field, remove the honeycomb, mask."""

from __future__ import annotations

from rig.camera.field import FieldCrop
from rig.camera.frames import Frame
from rig.camera.honeycomb import HoneycombFilter


class FibrePipeline:
    """Crop, honeycomb removal and mask for frames of the size `crop` was made for."""

    def __init__(self, crop: FieldCrop, honeycomb: HoneycombFilter) -> None:
        self.crop = crop
        self.honeycomb = honeycomb

    def process(self, frame: Frame) -> Frame:
        """A new frame, the field's bounding square, honeycomb removed, black outside the field."""
        return self.crop.apply_mask(self.honeycomb.apply(self.crop.crop(frame)))
