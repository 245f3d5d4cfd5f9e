"""Recording to segmented files, so that a crash loses at most the open segment.

A recording is a directory of segments: `seg-000001.avi` (MJPG in AVI, or mp4v in MP4) with
`seg-000001.jsonl` beside it, one JSON line per frame written (`{"frame": 0, "t_ns": ...}`, the
frame's capture stamp), and `index.jsonl`, one line per closed segment. A segment closes when
the frames' stamps span `segment_s` (10 s by default), or on `close()`.

What survives what:
- A segment is readable once closed: the AVI's index is written by `VideoWriter.release()`,
  then the video and its sidecar are fsynced, and only then its line goes into the index
  (fsynced too). An AVI that was never released (the process killed, the power cut) may not
  open; that is the open segment, the one a crash may lose.
- The sidecar line of every frame is flushed to the OS as the frame is written: after a kill
  of the process (not of the machine) the open segment's stamps are all on disk, which is what
  a later repair of its AVI needs.

Threads: every call blocks on disk I/O and the encoder (a 640x480 MJPG frame took 3.8 ms).
Call it from the camera process's own thread, never from an asyncio event loop: `write` and
`close` refuse to run on a thread with a running loop.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import cv2

from rig.camera.frames import Frame

CONTAINERS = {"MJPG": ".avi", "mp4v": ".mp4"}
INDEX_NAME = "index.jsonl"


class RecordingError(RuntimeError):
    """A segment could not be opened or written."""


@dataclass(frozen=True, slots=True)
class Segment:
    """A closed segment, as its index line records it."""

    number: int
    video: str
    sidecar: str
    frames: int
    first_t_ns: int
    last_t_ns: int


class SegmentedRecorder:
    """Writes frames of one size to fixed-duration segments. Blocking: not for an event loop."""

    def __init__(
        self,
        directory: Path,
        width_px: int,
        height_px: int,
        fps: float,
        segment_s: float = 10.0,
        fourcc: str = "MJPG",
    ) -> None:
        if fourcc not in CONTAINERS:
            raise ValueError(f"fourcc = {fourcc!r}: expected one of {sorted(CONTAINERS)}")
        if fps <= 0:
            raise ValueError(f"fps = {fps}: expected a frame rate above 0")
        if segment_s * fps < 1:
            raise ValueError(
                f"segment_s = {segment_s}: expected at least one frame's time ({1 / fps:.3f} s)"
            )
        self.directory = directory
        self.size_px = (width_px, height_px)
        self.fps = fps
        # A segment holds segment_s of video: it rolls over at the frame due at segment_s,
        # give or take half a frame of jitter in the capture stamps.
        self._rollover_ns = round((segment_s - 0.5 / fps) * 1e9)
        self.fourcc = fourcc
        directory.mkdir(parents=True, exist_ok=True)
        self._number = _last_segment_number(directory)
        self._writer: cv2.VideoWriter | None = None
        self._sidecar: IO[str] | None = None
        self._frames = 0
        self._first_t_ns = 0
        self._last_t_ns = 0
        self.closed_segments: list[Segment] = []

    @property
    def open_segment(self) -> int | None:
        """The number of the segment being written, if any."""
        return self._number if self._writer is not None else None

    def write(self, frame: Frame, t_ns: int) -> None:
        """Appends a frame stamped `t_ns` (its capture time), rolling over to a new segment when
        this one spans `segment_s`."""
        _refuse_event_loop()
        if (frame.shape[1], frame.shape[0]) != self.size_px or frame.ndim != 3:
            raise ValueError(
                f"frame of shape {frame.shape}: expected {self.size_px[1]}x{self.size_px[0]}x3"
            )
        if self._writer is not None and t_ns - self._first_t_ns >= self._rollover_ns:
            self._close_segment()
        if self._writer is None:
            self._open_segment(t_ns)
        assert self._writer is not None and self._sidecar is not None
        self._writer.write(frame)
        self._sidecar.write(json.dumps({"frame": self._frames, "t_ns": t_ns}) + "\n")
        self._sidecar.flush()
        self._frames += 1
        self._last_t_ns = t_ns

    def close(self) -> None:
        """Closes the open segment cleanly (index, fsync); the recorder can write again after."""
        _refuse_event_loop()
        if self._writer is not None:
            self._close_segment()

    def _open_segment(self, t_ns: int) -> None:
        self._number += 1
        video = self.directory / _video_name(self._number, self.fourcc)
        writer = cv2.VideoWriter(
            str(video), cv2.VideoWriter.fourcc(*self.fourcc), self.fps, self.size_px
        )
        if not writer.isOpened():
            raise RecordingError(f"{video}: the {self.fourcc} encoder could not open it")
        self._writer = writer
        self._sidecar = open(  # noqa: SIM115 (closed in _close_segment)
            self.directory / _sidecar_name(self._number), "w", encoding="utf-8"
        )
        self._frames = 0
        self._first_t_ns = self._last_t_ns = t_ns

    def _close_segment(self) -> None:
        assert self._writer is not None and self._sidecar is not None
        self._writer.release()
        self._writer = None
        self._sidecar.flush()
        os.fsync(self._sidecar.fileno())
        self._sidecar.close()
        self._sidecar = None
        video = self.directory / _video_name(self._number, self.fourcc)
        _fsync_path(video)
        segment = Segment(
            number=self._number,
            video=video.name,
            sidecar=_sidecar_name(self._number),
            frames=self._frames,
            first_t_ns=self._first_t_ns,
            last_t_ns=self._last_t_ns,
        )
        with open(self.directory / INDEX_NAME, "a", encoding="utf-8") as index:
            index.write(json.dumps(_segment_record(segment)) + "\n")
            index.flush()
            os.fsync(index.fileno())
        _fsync_path(self.directory)
        self.closed_segments.append(segment)


def read_index(directory: Path) -> list[Segment]:
    """The closed segments of a recording; a torn last line (a crash mid-append) is skipped."""
    path = directory / INDEX_NAME
    if not path.exists():
        return []
    segments = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            segments.append(Segment(**record))
        except (json.JSONDecodeError, TypeError):
            continue
    return segments


def _segment_record(segment: Segment) -> dict[str, int | str]:
    return {
        "number": segment.number,
        "video": segment.video,
        "sidecar": segment.sidecar,
        "frames": segment.frames,
        "first_t_ns": segment.first_t_ns,
        "last_t_ns": segment.last_t_ns,
    }


def _video_name(number: int, fourcc: str) -> str:
    return f"seg-{number:06d}{CONTAINERS[fourcc]}"


def _sidecar_name(number: int) -> str:
    return f"seg-{number:06d}.jsonl"


def _last_segment_number(directory: Path) -> int:
    """Segments continue after any already there (a recording resumed after a restart)."""
    numbers = [int(p.stem[4:]) for p in directory.glob("seg-*.jsonl") if p.stem[4:].isdigit()]
    return max(numbers, default=0)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _refuse_event_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        "SegmentedRecorder called on an asyncio event loop: it blocks on the encoder and the "
        "disk; call it from the camera's own thread or process"
    )
