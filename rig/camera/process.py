"""The camera's own process: capture into shared memory, snapshots, recording.

Video never shares the fluid loop's process (issue 8: an OpenCV thread doing 1080p work beside
the asyncio loop raised its p99 lateness fourfold). The daemon starts this process
(`python -m rig.camera.process SPEC`, a fresh interpreter that inherits none of the daemon's
threads) with the name of a `SharedFrames` block it created.

- The capture thread opens the source (a V4L2 device asking for MJPG at the profile's size and
  rate, a stream URL, or a file replayed at its own rate), decodes each frame straight into a
  shared slot and stamps it as it arrives; a source that fails or ends is released and opened
  again with back-off (an unplugged camera comes back on its own).
- The video thread sends the view to the consoles through the rig's broker while one watches
  (rig/camera/stream.py; with the broker given as the second argument).
- The main thread answers the daemon's requests, one JSON object a line on stdin, each
  answered by one line on stdout: a snapshot (PNG + JSON, fsynced, by
  rig/camera/snapshot.py), recording start and stop (segments by rig/camera/recording.py, fed
  by a recorder thread). All the encoding and fsyncs happen here, never in the daemon.

Requests are objects with an `op`; each gets one reply object with `ok`. Logs go to stderr. Closed segments are
reported in the replies' `segments` list (drained on every reply).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2

from drivers.background import run_in_background
from rig.camera.brightness import FieldMeter
from rig.camera.recording import SegmentedRecorder
from rig.camera.shared import CaptureSpec, SharedFrames
from rig.camera.snapshot import SnapshotMeta, write_snapshot
from rig.camera.stream import VideoBroker, VideoStream
from rig.camera.view import LiveView

log = logging.getLogger(__name__)

REOPEN_MIN_S = 0.1
REOPEN_MAX_S = 1.0


def open_source(spec: CaptureSpec) -> cv2.VideoCapture:
    if spec.source.startswith("/dev/video"):
        capture = cv2.VideoCapture(spec.source, cv2.CAP_V4L2)
        capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, spec.width_px)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, spec.height_px)
        capture.set(cv2.CAP_PROP_FPS, spec.fps)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the latest frame, not a queue of old ones
        return capture
    return cv2.VideoCapture(spec.source, cv2.CAP_FFMPEG)


class Capture:
    """The capture thread: the latest frame in shared memory, stamped at capture."""

    def __init__(self, spec: CaptureSpec, frames: SharedFrames) -> None:
        self.spec = spec
        self.frames = frames
        self.new_frame = threading.Condition()
        self.stopping = threading.Event()
        self._is_file = not spec.source.startswith(("/dev/", "http://", "https://", "rtsp://"))
        self.thread = threading.Thread(target=self._run, name="camera capture", daemon=True)

    def _run(self) -> None:
        delay_s = REOPEN_MIN_S
        while not self.stopping.is_set():
            capture = open_source(self.spec)
            if capture.isOpened():
                delay_s = REOPEN_MIN_S
                self._read_until_lost(capture)
            capture.release()
            self.stopping.wait(delay_s)
            delay_s = min(delay_s * 2, REOPEN_MAX_S)

    def _read_until_lost(self, capture: cv2.VideoCapture) -> None:
        period_ns = int(1e9 / self.spec.fps)
        last_ns = 0
        frames = self.frames
        size = (frames.width_px, frames.height_px)
        meter = FieldMeter(*size)
        while not self.stopping.is_set():
            slot = frames.begin()
            ok, image = capture.read(slot)
            t_ns = time.monotonic_ns()
            if not ok:
                frames.abort()
                return
            if image.shape[1::-1] != size:
                cv2.resize(image, size, dst=slot)  # a camera that ignored the asked size
            elif image.ctypes.data != slot.ctypes.data:
                slot[:] = image
            frames.commit(t_ns, meter.measure(slot))
            if last_ns and t_ns - last_ns > 1.5 * period_ns:
                frames.count_dropped(round((t_ns - last_ns) / period_ns) - 1)
            last_ns = t_ns
            with self.new_frame:
                self.new_frame.notify_all()
            if self._is_file:  # a replayed file plays at its recorded rate, not at decode speed
                self.stopping.wait(1.0 / self.spec.fps)


class Recorder:
    """Writes every new view to segments while recording (its own thread). The segments are
    at the view's size; should it change (the pipeline calibrated after the first lit frame),
    the open segment is closed and the next one has the new size."""

    def __init__(
        self, spec: CaptureSpec, view: LiveView, directory: Path, segments: list[dict[str, Any]]
    ) -> None:
        self._spec = spec
        self._view = view
        self._recorder: SegmentedRecorder | None = None
        self._directory = directory
        self._segments = segments
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="camera recorder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        view, seen, last_ns = self._view, 0, 0
        gap_ns = self._spec.gap_ms * 1_000_000
        while not self._stop.is_set():
            with view.new_view:
                view.new_view.wait(0.1)
            recorder = self._recorder
            # Video lost (unplugged, a dead stream): the open segment is closed now, durable
            # and in the index, and the video that comes back goes into a new one.
            if (
                recorder is not None
                and recorder.open_segment is not None
                and time.monotonic_ns() - last_ns > gap_ns
            ):
                recorder.close()
                self._note()
            got = view.latest
            if got is None or got.info.number == seen:
                continue
            seen, last_ns = got.info.number, got.info.t_ns
            height, width = got.image.shape[:2]
            if recorder is None or recorder.size_px != (width, height):
                if recorder is not None:
                    recorder.close()
                    self._note()
                recorder = self._recorder = SegmentedRecorder(
                    self._directory, width, height, self._spec.fps
                )
            recorder.write(got.image, got.info.t_ns)
            self._note()
        if self._recorder is not None:
            self._recorder.close()
            self._note()

    def _note(self) -> None:
        assert self._recorder is not None
        closed = self._recorder.closed_segments
        while closed:
            segment = closed.pop(0)
            self._segments.append(
                {
                    "path": str(self._directory / segment.video),
                    "frames": segment.frames,
                    "duration_s": round((segment.last_t_ns - segment.first_t_ns) / 1e9, 3),
                }
            )

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s camera %(levelname)s %(name)s: %(message)s",
    )
    # Below the daemon: when it wakes it gets the CPU at once, and when the CPUs are short the
    # fluid loop gets them first and video gives (a late frame is a dropped frame; a late
    # pressure sample stops the pump).
    run_in_background()
    broker = VideoBroker.from_argument(sys.argv[2]) if len(sys.argv) > 2 else None
    serve(CaptureSpec(**json.loads(sys.argv[1])), broker)


def serve(spec: CaptureSpec, broker: VideoBroker | None = None) -> None:
    frames = SharedFrames.attach(spec.shm_name, spec.width_px, spec.height_px)
    capture = Capture(spec, frames)
    capture.thread.start()
    white = None if spec.white_target is None else Path(spec.white_target)
    view = LiveView(frames, capture.new_frame, capture.stopping, white)
    view.thread.start()
    stream = None if broker is None else VideoStream(broker, view, capture.stopping, spec.gap_ms)
    recorder: Recorder | None = None
    segments: list[dict[str, Any]] = []
    try:
        while True:
            line = sys.stdin.readline()
            if not line:
                return  # the daemon went: so does its camera process
            request = json.loads(line)
            try:
                result, recorder = _handle(request, capture, view, recorder, segments)
                result["pipeline"] = view.figures()
                reply: dict[str, Any] = {"ok": True, "result": result}
            except Exception as exc:
                log.warning("camera request %s failed: %r", request.get("op"), exc)
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            reply["segments"], segments[:] = list(segments), []
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
            if request.get("op") == "quit":
                return
    finally:
        capture.stopping.set()
        if stream is not None:
            stream.stop()
        if recorder is not None:
            recorder.stop()
        capture.thread.join(timeout=2.0)
        view.thread.join(timeout=2.0)
        frames.close()


def _handle(
    request: dict[str, Any],
    capture: Capture,
    view: LiveView,
    recorder: Recorder | None,
    segments: list[dict[str, Any]],
) -> tuple[dict[str, Any], Recorder | None]:
    op = request.get("op")
    if op == "snapshot":
        got = capture.frames.latest()
        if got is None:
            raise RuntimeError("no frame captured yet")
        info, frame = got
        meta = SnapshotMeta(
            taken_at=datetime.fromisoformat(request["taken_at"]),
            frame_t_ns=info.t_ns,
            pressure_mmhg=request.get("pressure_mmhg"),
            flow_ml_min=request.get("flow_ml_min"),
            volume_ml=request.get("volume_ml"),
            note=request.get("note", ""),
        )
        # The view the surgeon saw, and the raw frame it came from (rig/camera/view.py).
        snapshot = write_snapshot(Path(request["directory"]), view.process(frame), meta, raw=frame)
        return {"png": str(snapshot.png)}, recorder
    if op == "record_start":
        if recorder is None:
            recorder = Recorder(capture.spec, view, Path(request["directory"]), segments)
        return {"recording": True}, recorder
    if op == "record_stop":
        if recorder is not None:
            recorder.stop()
        return {"recording": False}, None
    if op in ("ping", "quit"):
        return {}, recorder
    raise ValueError(f"op = {op!r}: expected snapshot, record_start, record_stop, ping or quit")


if __name__ == "__main__":
    main()
