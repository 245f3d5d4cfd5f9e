"""Snapshots: a PNG of the frame and a JSON of what the rig read at that moment, and a note.

`snap-000042.png` and `snap-000042.json` (time, the frame's capture stamp, pressure, flow,
volume, the note), and with them `snap-000042.raw.png`, the raw frame the picture was made
from, where one is given (rig/camera/view.py says why). All are written atomically, the
pictures first: each goes to a temporary name in
the same directory, is fsynced, renamed into place, and the directory is fsynced. The JSON is
the commit: a snapshot exists when its JSON does, and then its PNG is complete. So a snapshot
that `write_snapshot` has returned is readable after a SIGKILL or a power cut, and one that was
interrupted leaves at most an orphan PNG or a `.tmp` file, never a half-written picture under a
snapshot's name.

Blocking (PNG encoding of a 640x480 frame took 12 ms here): not for an asyncio event loop.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

import cv2
from pydantic import BaseModel, ConfigDict, Field, field_validator

from rig.camera.frames import Frame

MAX_NOTE_CHARS = 500
_NAME = re.compile(r"^snap-(\d{6})\.json$")
_NUMBER = re.compile(r"^snap-(\d{6})\.")


class SnapshotError(RuntimeError):
    """A snapshot could not be encoded or written."""


class SnapshotMeta(BaseModel):
    """What the rig knew when the frame was taken."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    taken_at: datetime
    """Wall-clock time (UTC, timezone-aware) of the snapshot."""
    frame_t_ns: int
    """The frame's capture stamp (the camera's monotonic clock), to find it in a recording."""
    pressure_mmhg: float | None
    flow_ml_min: float | None
    volume_ml: float | None
    """Volume infused so far in the procedure."""
    note: str = Field(default="", max_length=MAX_NOTE_CHARS)
    """What the surgeon says it shows, e.g. "empty duct"."""

    @field_validator("taken_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError(f"taken_at = {value.isoformat()}: expected a timezone-aware time")
        return value

    @field_validator("note")
    @classmethod
    def _printable(cls, value: str) -> str:
        if any(ord(c) < 32 and c not in "\t" for c in value):
            raise ValueError("note: expected text without control characters (newlines included)")
        return value


class Snapshot(BaseModel):
    model_config = ConfigDict(frozen=True)

    number: int
    png: Path
    meta: SnapshotMeta
    raw_png: Path | None = None
    """The raw frame the picture was made from, if it was kept."""


def write_snapshot(
    directory: Path, frame: Frame, meta: SnapshotMeta, raw: Frame | None = None
) -> Snapshot:
    """Writes the next snapshot of `directory`; when it returns, its files are on disk."""
    directory.mkdir(parents=True, exist_ok=True)
    number = _next_number(directory)
    raw_path = None
    if raw is not None:
        raw_path = directory / f"snap-{number:06d}.raw.png"
        _write_atomic(raw_path, _png(raw))
    png_path = directory / f"snap-{number:06d}.png"
    _write_atomic(png_path, _png(frame))
    _write_atomic(directory / f"snap-{number:06d}.json", meta.model_dump_json(indent=1).encode())
    return Snapshot(number=number, png=png_path, meta=meta, raw_png=raw_path)


def _png(frame: Frame) -> bytes:
    ok, png = cv2.imencode(".png", frame)
    if not ok:
        raise SnapshotError(f"frame of shape {frame.shape}: PNG encoding failed")
    return bytes(png.tobytes())


def list_snapshots(directory: Path) -> list[Snapshot]:
    """The snapshots of `directory` in order (those whose JSON is in place)."""
    snapshots = []
    for path in sorted(directory.glob("snap-*.json")):
        match = _NAME.match(path.name)
        if match is None:
            continue
        meta = SnapshotMeta.model_validate_json(path.read_bytes())
        raw = path.with_suffix(".raw.png")
        snapshots.append(
            Snapshot(
                number=int(match.group(1)),
                png=path.with_suffix(".png"),
                meta=meta,
                raw_png=raw if raw.exists() else None,
            )
        )
    return snapshots


def _next_number(directory: Path) -> int:
    # Orphan PNGs count too: a number is never reused, even after an interrupted snapshot.
    numbers = [int(m.group(1)) for p in directory.glob("snap-*") if (m := _NUMBER.match(p.name))]
    return max(numbers, default=0) + 1


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
