"""Segmented recording: segments roll over on the frames' stamps, each sidecar matches its video
frame for frame, and a killed writer leaves every closed segment readable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from rig.camera.recording import SegmentedRecorder, read_index

FPS = 30.0
WIDTH, HEIGHT = 160, 120
FRAME_NS = round(1e9 / FPS)
REPO = Path(__file__).resolve().parents[2]


def frame(k: int) -> np.ndarray:
    """A frame whose grey level encodes its number (so a decoded frame can be told apart)."""
    return np.full((HEIGHT, WIDTH, 3), (k * 7) % 200 + 20, np.uint8)


def decoded_frames(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), f"{path} does not open"
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    return frames


def sidecar(path: Path) -> list[dict[str, int]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("fourcc", ["MJPG", "mp4v"])
def test_segments_roll_over_and_each_sidecar_matches_its_frames(
    tmp_path: Path, fourcc: str
) -> None:
    recorder = SegmentedRecorder(tmp_path, WIDTH, HEIGHT, FPS, segment_s=1.0, fourcc=fourcc)
    t0 = 1_000_000_000
    for k in range(75):  # 2.5 s at 30 fps: two full segments and half of a third
        recorder.write(frame(k), t0 + k * FRAME_NS)
    assert recorder.open_segment == 3
    recorder.close()
    assert recorder.open_segment is None

    segments = read_index(tmp_path)
    assert [s.frames for s in segments] == [30, 30, 15]
    written = 0
    for segment in segments:
        lines = sidecar(tmp_path / segment.sidecar)
        assert [line["frame"] for line in lines] == list(range(segment.frames))
        stamps = [line["t_ns"] for line in lines]
        assert stamps == [t0 + (written + i) * FRAME_NS for i in range(segment.frames)]
        assert (segment.first_t_ns, segment.last_t_ns) == (stamps[0], stamps[-1])
        images = decoded_frames(tmp_path / segment.video)
        assert len(images) == segment.frames
        for i, image in enumerate(images):
            assert abs(float(image.mean()) - float(frame(written + i).mean())) < 4.0
        written += segment.frames


def test_a_new_recorder_continues_the_numbering(tmp_path: Path) -> None:
    first = SegmentedRecorder(tmp_path, WIDTH, HEIGHT, FPS)
    first.write(frame(0), 0)
    first.close()
    second = SegmentedRecorder(tmp_path, WIDTH, HEIGHT, FPS)
    second.write(frame(1), FRAME_NS)
    second.close()
    assert [s.number for s in read_index(tmp_path)] == [1, 2]


def test_a_frame_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    recorder = SegmentedRecorder(tmp_path, WIDTH, HEIGHT, FPS)
    with pytest.raises(ValueError, match="expected 120x160x3"):
        recorder.write(np.zeros((HEIGHT, WIDTH + 1, 3), np.uint8), 0)


async def test_the_recorder_refuses_to_run_on_an_event_loop(tmp_path: Path) -> None:
    recorder = SegmentedRecorder(tmp_path, WIDTH, HEIGHT, FPS)
    with pytest.raises(RuntimeError, match="event loop"):
        recorder.write(frame(0), 0)


_WRITER = """
import sys
from pathlib import Path
import numpy as np
from rig.camera.recording import SegmentedRecorder
recorder = SegmentedRecorder(Path(sys.argv[1]), 160, 120, 30.0, segment_s=1.0)
k = 0
while True:
    recorder.write(np.full((120, 160, 3), (k * 7) % 200 + 20, np.uint8), k * 33_333_333)
    k += 1
    if recorder.open_segment == 3 and k == 65:
        print("third segment open", flush=True)
        sys.stdin.readline()  # killed here, mid-segment
"""


def test_a_killed_writer_leaves_the_closed_segments_readable(tmp_path: Path) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "third segment open"
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=10)
    assert writer.returncode == -signal.SIGKILL

    segments = read_index(tmp_path)
    assert [s.number for s in segments] == [1, 2]
    for segment in segments:
        assert len(decoded_frames(tmp_path / segment.video)) == segment.frames == 30
        assert len(sidecar(tmp_path / segment.sidecar)) == 30
    # The open segment's stamps reached the disk, one line per frame written.
    assert [line["frame"] for line in sidecar(tmp_path / "seg-000003.jsonl")] == list(range(5))
