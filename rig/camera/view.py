"""The surgeon's view: every captured frame through the pipeline, in the camera process.

The video stream sends this view to the console and the recorder records it: the surgeon
steers by the picture without the bundle's honeycomb and fixed pattern, and the record shows
what the surgeon saw.
A snapshot keeps both the view and the raw frame it came from (rig/camera/process.py): a still
is a clinical record a reviewer may look at again, and the raw frame lets a later, better
reconstruction (or a doubt about an artefact of ours) go back to what the camera captured;
one more PNG per snapshot costs nothing that matters. Video is not kept raw: a second encoder
at the camera's rate would double the recording's cost.

The pipeline (rig/camera/pipeline.py, docs/camera.md):
- with a white target (`CaptureSpec.white_target`, a PNG of a white target through the scope,
  taken when the scope is seated): the field located on it, the cores found and triangulated,
  core interpolation with the flat-field, output reduced to ~4.5 px per core where the camera
  has more;
- without one, or if calibrating on it fails: the Gaussian (it needs only the core spacing,
  read from the spectrum) on the field located on the first lit frame. Until then the view is
  the raw frame.

The pipeline thread works on the frame in shared memory where it lies (no copy out,
`SharedFrames.latest_through`), and skips to the latest frame when it falls behind: the view
never queues.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from rig.camera.field import FibreField, FieldCrop, FieldNotFound
from rig.camera.frames import Frame
from rig.camera.honeycomb import (
    CalibrationError,
    CoreInterpolator,
    GaussianFilter,
    estimate_core_spacing_px,
)
from rig.camera.pipeline import FibrePipeline
from rig.camera.shared import FrameInfo, SharedFrames

log = logging.getLogger(__name__)

PX_PER_CORE = 4.5
"""The core interpolation's output where the camera has more (docs/camera.md: nothing the
bundle carries is lost, at a quarter of the cost at 1080p)."""
BUNDLE_CORES = 10_000
"""The scope's bundle (issue 8: about 10,000 cores): its core spacing follows from the field's
size, a check on the spacing read from the spectrum."""
MIN_CORE_SPACING_PX = 3.0
"""Below this the camera does not resolve the cores (their lattice frequency, 2 / (√3·d),
reaches the sensor's Nyquist limit at d = 2.3 px: 320x240 has 2.1 px per core): the spectrum's
peak is an alias and there are no cores to find; a blur over one core is all that helps."""
LIT = 20.0
"""A frame whose field is at least this bright (mean grey level) is lit enough to find the
field and the core spacing on."""


@dataclass(frozen=True)
class ViewFrame:
    info: FrameInfo
    """The captured frame's number, stamp and brightness."""
    image: Frame
    """Never changed once published: readers share it."""


def calibrate_on_white(white: Frame) -> FibrePipeline:
    """Crop and core interpolation from a frame of a white target (raises CalibrationError,
    FieldNotFound)."""
    height, width = white.shape[:2]
    crop = FieldCrop(FibreField.locate(white), width, height)
    cropped = crop.crop(white).copy()
    spacing = core_spacing_px(cropped, crop.field)
    if spacing < MIN_CORE_SPACING_PX:
        return FibrePipeline(crop, GaussianFilter(spacing))
    scale = min(1.0, PX_PER_CORE / spacing)
    return FibrePipeline(crop, CoreInterpolator.calibrate(cropped, spacing, output_scale=scale))


def calibrate_on_scene(frame: Frame) -> FibrePipeline:
    """Crop and Gaussian from a lit frame of the scene (raises FieldNotFound)."""
    height, width = frame.shape[:2]
    crop = FieldCrop(FibreField.locate(frame), width, height)
    return FibrePipeline(crop, GaussianFilter(core_spacing_px(crop.crop(frame), crop.field)))


def core_spacing_px(cropped: Frame, field: FibreField) -> float:
    """The spacing read from the spectrum where it agrees (within 25 %) with what the field's
    size gives for the bundle's cores; that figure where it does not (an aliased peak)."""
    expected = field.radius_px * math.sqrt(2 * math.pi / (math.sqrt(3) * BUNDLE_CORES))
    measured = estimate_core_spacing_px(cropped)
    return measured if abs(measured / expected - 1.0) <= 0.25 else expected


class LiveView:
    """The pipeline thread and the latest view it made."""

    def __init__(
        self,
        frames: SharedFrames,
        new_frame: threading.Condition,
        stopping: threading.Event,
        white_target: Path | None,
    ) -> None:
        self._frames = frames
        self._new_frame = new_frame
        self._stopping = stopping
        self._white_target = white_target
        self.new_view = threading.Condition()
        self.latest: ViewFrame | None = None
        self.pipeline: FibrePipeline | None = None
        self.costs_ms: deque[float] = deque(maxlen=120)
        """The pipeline's time per frame (crop, removal, mask), the latest frames."""
        self.thread = threading.Thread(target=self._run, name="camera view", daemon=True)

    @property
    def method(self) -> str:
        return "raw" if self.pipeline is None else self.pipeline.honeycomb.name

    def figures(self) -> dict[str, object]:
        costs = sorted(self.costs_ms)
        return {
            "method": self.method,
            "ms_p50": round(costs[len(costs) // 2], 2) if costs else None,
            "ms_max": round(costs[-1], 2) if costs else None,
        }

    def process(self, frame: Frame) -> Frame:
        """`frame` as the view shows it (a new frame; `frame` is not changed)."""
        if self.pipeline is None:
            return frame.copy()
        return self.pipeline.process(frame)

    def _run(self) -> None:
        if self._white_target is not None:
            self._calibrate_on_white(self._white_target)
        seen, retry_s = 0, 0.0
        while not self._stopping.is_set():
            with self._new_frame:
                self._new_frame.wait(0.5)
            info = self._frames.latest_info()
            if info is None or info.number == seen:
                continue
            if self.pipeline is None and info.brightness >= LIT and time.monotonic() >= retry_s:
                retry_s = time.monotonic() + 1.0  # a failed try is not repeated every frame
                self._calibrate_on_scene()
            started = time.perf_counter()
            got = self._frames.latest_through(self.process)
            if got is None:
                continue  # overtaken by the writer: the next frame instead
            if self.pipeline is not None:
                self.costs_ms.append((time.perf_counter() - started) * 1000.0)
            seen = got[0].number
            with self.new_view:
                self.latest = ViewFrame(*got)
                self.new_view.notify_all()

    def _calibrate_on_white(self, path: Path) -> None:
        white = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if white is None or white.shape[:2] != (self._frames.height_px, self._frames.width_px):
            log.warning(
                "white target %s: unreadable or not %dx%d: the Gaussian instead",
                path,
                self._frames.width_px,
                self._frames.height_px,
            )
            return
        started = time.perf_counter()
        try:
            self.pipeline = calibrate_on_white(np.ascontiguousarray(white))
        except (CalibrationError, FieldNotFound) as exc:
            log.warning("white target %s: %s: the Gaussian instead", path, exc)
            return
        log.info(
            "core interpolation calibrated on %s in %.1f s",
            path,
            time.perf_counter() - started,
        )

    def _calibrate_on_scene(self) -> None:
        got = self._frames.latest_through(np.copy)
        if got is None:
            return
        try:
            self.pipeline = calibrate_on_scene(got[1])
        except FieldNotFound as exc:
            log.warning("no field on a lit frame (%s): the view stays raw for now", exc)
            return
        log.info("the Gaussian on the field of a lit frame (no white target)")
