"""The frame types of the camera pipeline: OpenCV's layout (rows, columns, BGR), 8 bits."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Frame = npt.NDArray[np.uint8]
"""A camera frame: HxWx3 BGR (or HxW grey), uint8, as OpenCV captures and encodes them."""

Mask = npt.NDArray[np.uint8]
"""HxW, uint8: 255 where a pixel counts, 0 elsewhere (or a grey image)."""


def luminance(frame: Frame) -> npt.NDArray[np.float32]:
    """Rec. 601 luma of a BGR frame, as float32 (the frame itself when grey)."""
    if frame.ndim == 2:
        return frame.astype(np.float32)
    b, g, r = (frame[:, :, i].astype(np.float32) for i in range(3))
    luma: npt.NDArray[np.float32] = 0.114 * b + 0.587 * g + 0.299 * r
    return luma
