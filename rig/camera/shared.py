"""Frames between the camera process and the daemon, through shared memory.

The camera process decodes each frame straight into a slot of a shared block
(`cv2.VideoCapture.read(slot)` writes into the array it is given), so a frame is never copied
to be handed over; a reader copies it out only when it needs the pixels (a snapshot), or reads
the slots' stamps alone (the camera's health). Three slots: the writer fills the one after the
latest, so a reader working on the latest has two frame periods before its slot is reused.

Each slot has a sequence lock: `seq` is odd while the writer fills it. A reader reads the
slot's `seq`, the pixels, then `seq` again; equal and even, the pixels are one frame. Only the
latest frame counts: there is no queue to fall behind on.

Layout: a header of int64 words, then the slots' pixels (height x width x 3, uint8, BGR).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import resource_tracker, shared_memory
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from rig.camera.frames import Frame

T = TypeVar("T")

SLOTS = 3
_LATEST = 0  # header word: the latest complete slot, -1 before the first frame
_CAPTURED = 1  # frames captured so far
_DROPPED = 2  # frames the camera lost (gaps in its stream)
_SLOT_WORDS = 4  # per slot: seq, capture stamp (ns, CLOCK_MONOTONIC), frame number, brightness
_BRIGHTNESS_SCALE = 1000  # the field's mean luma, stored in thousandths of a grey level
_HEADER_WORDS = 3 + SLOTS * _SLOT_WORDS
_HEADER_BYTES = _HEADER_WORDS * 8


@dataclass(frozen=True)
class CaptureSpec:
    """What the daemon tells the camera process (as JSON on its command line)."""

    source: str
    """A V4L2 device path, a stream URL, or a video file."""
    width_px: int
    height_px: int
    fps: float
    shm_name: str
    white_target: str | None = None
    """A PNG of a white target seen through the scope: the core interpolation's calibration
    (rig/camera/view.py); without it the Gaussian, on the field of the first lit frame."""
    gap_ms: int = 400
    """No frame for this long is lost video (the daemon's devices.camera.video_timeout_ms):
    the recording's open segment is closed, and the video that comes back starts a new one."""


@dataclass(frozen=True, slots=True)
class FrameInfo:
    number: int
    """Frames captured before it since the camera process started (from 1)."""
    t_ns: int
    """When it was captured, `time.monotonic_ns()` (CLOCK_MONOTONIC, shared by the processes)."""
    brightness: float = 0.0
    """The field's mean luma, 0..255, measured at capture (rig/camera/brightness.py)."""


class SharedFrames:
    """The block, as its creator (the daemon: it outlives camera processes and unlinks it) or
    as a process that attaches to it by name (the camera process)."""

    def __init__(self, shm: shared_memory.SharedMemory, width_px: int, height_px: int) -> None:
        self.width_px, self.height_px = width_px, height_px
        self._shm = shm
        self._header: npt.NDArray[np.int64] = np.ndarray((_HEADER_WORDS,), np.int64, buffer=shm.buf)
        self._slots: npt.NDArray[np.uint8] = np.ndarray(
            (SLOTS, height_px, width_px, 3), np.uint8, buffer=shm.buf, offset=_HEADER_BYTES
        )
        self._writing = -1

    @classmethod
    def create(cls, width_px: int, height_px: int) -> SharedFrames:
        if width_px <= 0 or height_px <= 0:
            raise ValueError(f"frame size {width_px}x{height_px}: expected positive sizes")
        size = _HEADER_BYTES + SLOTS * width_px * height_px * 3
        frames = cls(shared_memory.SharedMemory(create=True, size=size), width_px, height_px)
        frames._header[:] = 0
        frames._header[_LATEST] = -1
        return frames

    @classmethod
    def attach(cls, name: str, width_px: int, height_px: int) -> SharedFrames:
        shm = shared_memory.SharedMemory(name=name)
        # Python 3.11 registers an attached block for removal when this process ends; the
        # creator owns it (bpo-39959).
        resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
        return cls(shm, width_px, height_px)

    @property
    def name(self) -> str:
        return self._shm.name

    def close(self) -> None:
        # Views into the buffer must go before it can be closed.
        del self._header, self._slots
        with contextlib.suppress(BufferError):
            self._shm.close()

    def unlink(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._shm.unlink()

    # -- the writer (the camera process's capture thread) ---------------------------------------

    def begin(self) -> Frame:
        """The slot to decode the next frame into (marked as being written)."""
        slot = (int(self._header[_LATEST]) + 1) % SLOTS
        seq = _SLOT_WORDS * slot + 3
        # Odd: being written (a writer killed mid-frame left it odd: the next one goes on).
        self._header[seq] += 1 if self._header[seq] % 2 == 0 else 2
        self._writing = slot
        view: Frame = self._slots[slot]
        return view

    def commit(self, t_ns: int, brightness: float = 0.0) -> None:
        """The slot `begin` gave holds a whole frame captured at `t_ns`: publish it."""
        slot = self._writing
        base = _SLOT_WORDS * slot + 3
        self._header[_CAPTURED] += 1
        self._header[base + 1] = t_ns
        self._header[base + 2] = self._header[_CAPTURED]
        self._header[base + 3] = round(brightness * _BRIGHTNESS_SCALE)
        self._header[base] += 1  # even: complete
        self._header[_LATEST] = slot
        self._writing = -1

    def abort(self) -> None:
        """No frame came (the read failed): the slot is left complete and unpublished."""
        if self._writing >= 0:
            self._header[_SLOT_WORDS * self._writing + 3] += 1
            self._writing = -1

    def count_dropped(self, frames: int) -> None:
        self._header[_DROPPED] += frames

    # -- the readers --------------------------------------------------------------------------

    @property
    def dropped(self) -> int:
        return int(self._header[_DROPPED])

    def latest_info(self) -> FrameInfo | None:
        """The latest frame's number and stamp, without its pixels; None before the first."""
        got = self._read(copy=False)
        return None if got is None else got[0]

    def latest(self) -> tuple[FrameInfo, Frame] | None:
        """A copy of the latest frame (None before the first); retried if the writer overtook."""
        for _ in range(SLOTS * 2):
            got = self._read(copy=True)
            if got is None:
                return None
            info, frame = got
            if frame is not None:
                return info, frame
        return None  # the writer lapped us every time: a reader that slow has no frame

    def latest_through(self, work: Callable[[Frame], T]) -> tuple[FrameInfo, T] | None:
        """`work` done on the latest frame where it lies, without copying it out; its result
        is kept only if the writer did not start on that slot meanwhile (the writer has two
        frame periods before it does). None before the first frame or if overtaken. `work`
        must not keep the frame it is given (a view into the slot)."""
        slot = int(self._header[_LATEST])
        if slot < 0:
            return None
        base = _SLOT_WORDS * slot + 3
        seq = int(self._header[base])
        if seq % 2:
            return None
        info = self._info(base)
        result = work(self._slots[slot])
        if int(self._header[base]) != seq:
            return None
        return info, result

    def _info(self, base: int) -> FrameInfo:
        return FrameInfo(
            number=int(self._header[base + 2]),
            t_ns=int(self._header[base + 1]),
            brightness=int(self._header[base + 3]) / _BRIGHTNESS_SCALE,
        )

    def _read(self, *, copy: bool) -> tuple[FrameInfo, Frame | None] | None:
        slot = int(self._header[_LATEST])
        if slot < 0:
            return None
        base = _SLOT_WORDS * slot + 3
        seq = int(self._header[base])
        info = self._info(base)
        if seq % 2:
            return info, None
        frame: Frame | None = self._slots[slot].copy() if copy else None
        if int(self._header[base]) != seq:
            return info, None
        return info, frame
