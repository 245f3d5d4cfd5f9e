"""The scope camera as a device of the rig: its own process, its health, `video_live`.

Its section is `[devices.camera]` (rig/devices/camera_config.py). The capture, the decoding,
snapshots and recording run in a process of their own (rig/camera/process.py): video never
shares the fluid loop's process. Frames come back through shared memory (rig/camera/shared.py);
this side reads only the latest frame's number and stamp, twenty times a second, which is the
camera's health.

The link is the video: it is up from the first frame and lost when no frame has come for
`video_timeout_ms` (an unplugged camera, a dead stream, a killed camera process). The
interlock's `video_live` fact follows it (the basket closes and fluid flows into the duct
only in sight, H25 and H19; a loss while fluid flows into the duct stops it), with a
`camera` event and the `video` alarm on each change (rig/alarms/conditions.py). The camera
process reconnects to its source by itself; a camera process that died is started again.
The camera moves nothing: it hands no actuator to the interlock. It does ask the interlock to
set the scope's LED (automatic brightness, rig/camera/brightness.py): from
`light_start_permille` when the video comes up, then a step towards `brightness_target`
whenever a frame captured after the last step shows the field off target.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from drivers.transport.backoff import Backoff
from drivers.transport.linkstats import LinkStats
from drivers.transport.mqtt import JsonObject
from drivers.transport.serial import LinkClosedError
from rig.camera.brightness import next_level
from rig.camera.shared import CaptureSpec, FrameInfo, SharedFrames
from rig.camera.stream import VideoBroker
from rig.devices.camera_config import URL_FILE_PREFIX, CameraDeviceConfig
from rig.devices.contract import Device, DeviceContext, Task
from rig.events.models import CameraChanged, SnapshotTaken, VideoSegment
from rig.fluid.controller import FluidMode
from rig.fluid.events import StopCause
from rig.safety.interlock import ActuatorSlots, InterlockDeniedError

log = logging.getLogger(__name__)

MEDIA_DIR = "media"
"""Snapshots go here in the record directory (the journal's); video in its `video`."""
VIDEO_DIR = "video"
POLL_S = 0.05
REQUEST_TIMEOUT_S = 10.0
"""A snapshot (PNG and two fsyncs) or closing a segment takes tens of ms; a camera process that
has not answered in this long is stuck, and is started again."""
QUIT_TIMEOUT_S = 2.0
IN_DUCT_MODES = frozenset({FluidMode.IRRIGATING, FluidMode.HOLD_PRESSURE, FluidMode.BOLUS})
"""Fluid flowing into the duct, which a loss of video stops (priming runs outside it)."""
BRIGHTNESS_PERIOD_S = 0.2
LIGHT_SETTLE_NS = 100_000_000
"""A frame counts for the next step only if captured this long after the last level was
acknowledged: the LED, the sensor's exposure and the stream's own buffering lag behind it."""


def shown_source(source: str) -> str:
    """The camera's source as the state, the events and the logs name it: a stream URL without
    its user, password, path or query (a network camera's login or token would otherwise reach
    everyone who reads the state, observers included; the rig's own video goes only to the
    roles that may see it, rig/camera/stream.py)."""
    parts = urlsplit(source)
    if not parts.scheme or not parts.hostname:
        return source  # a V4L2 device or a file
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


class CameraError(RuntimeError):
    """A camera request that could not be carried out (no camera process, no frame yet)."""


class CameraHealth:
    """Frames per second, frames lost, and the latency from the capture stamp to this side
    seeing the frame (at most one poll, 50 ms, more than the hand-over itself)."""

    def __init__(self) -> None:
        self._seen: deque[tuple[int, int]] = deque(maxlen=64)  # (frame number, seen at ns)
        self.latency_ms: float | None = None
        self.dropped_frames = 0
        self.last: FrameInfo | None = None

    def saw(self, info: FrameInfo, now_ns: int, dropped: int) -> None:
        if self.last is None or info.number != self.last.number:
            self._seen.append((info.number, now_ns))
            self.latency_ms = round((now_ns - info.t_ns) / 1e6, 1)
        self.last = info
        self.dropped_frames = dropped

    @property
    def fps(self) -> float | None:
        """Over the last second of frames seen."""
        if len(self._seen) < 2:
            return None
        newest_n, newest_ns = self._seen[-1]
        oldest_n, oldest_ns = next(
            ((n, t) for n, t in self._seen if newest_ns - t <= 1_000_000_000), self._seen[0]
        )
        if newest_ns == oldest_ns:
            return None
        return round((newest_n - oldest_n) * 1e9 / (newest_ns - oldest_ns), 1)

    def age_ms(self, now_ns: int) -> float | None:
        return None if self.last is None else (now_ns - self.last.t_ns) / 1e6

    def as_dict(self) -> JsonObject:
        return {
            "fps": self.fps,
            "dropped_frames": self.dropped_frames,
            "latency_ms": self.latency_ms,
            "frames": None if self.last is None else self.last.number,
        }


class CameraLink:
    """The camera process and its frames; up while frames arrive within the bound."""

    def __init__(self, config: CameraDeviceConfig, port: str) -> None:
        self.config = config
        self.port = port
        self.url = shown_source(port)
        self.stats = LinkStats()
        self.health = CameraHealth()
        self._timeout_ns = config.video_timeout_ms * 1_000_000
        self._frames: SharedFrames | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self._closing = False
        self.recording_asked = False
        """This camera process was asked to record (a new one has not been)."""
        self.pipeline: JsonObject | None = None
        """The camera process's pipeline: its method and cost per frame (rig/camera/view.py)."""
        self.video_broker: VideoBroker | None = None
        """Where the camera process sends the view to the consoles (rig/camera/stream.py): the
        daemon's broker with the camera's own login, given by the daemon; None: no video to
        consoles."""
        self._backoff = Backoff(initial_s=0.2, maximum_s=2.0)

    @property
    def frames(self) -> SharedFrames:
        if self._frames is None:
            self._frames = SharedFrames.create(self.config.width, self.config.height)
        return self._frames

    def _source(self) -> str | None:
        if self.port.startswith(URL_FILE_PREFIX):
            try:
                return Path(self.port.removeprefix(URL_FILE_PREFIX)).read_text().strip() or None
            except OSError:
                return None  # the simulator has not written it yet
        return self.port

    async def _start_process(self, source: str) -> None:
        white = self.config.white_target_for(self.port)
        spec = CaptureSpec(
            source,
            self.config.width,
            self.config.height,
            self.config.fps,
            self.frames.name,
            white_target=None if white is None else str(white),
            gap_ms=self.config.video_timeout_ms,
        )
        broker = self.video_broker
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rig.camera.process",
            json.dumps(dataclasses.asdict(spec)),
            *([] if broker is None else [broker.as_argument()]),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=None if broker is None else {**os.environ, **broker.environment()},
        )
        self.recording_asked = False
        self.url = shown_source(source)
        log.info("camera process %s started on %s", self._process.pid, source)

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process_alive()

    def _process_alive(self) -> bool:
        return self._process is not None and self._process.returncode is None

    def _poll(self) -> FrameInfo | None:
        frames = self.frames
        info = frames.latest_info()
        if info is not None:
            self.health.saw(info, time.monotonic_ns(), frames.dropped)
        return info

    def _fresh(self) -> bool:
        info = self._poll()
        return info is not None and time.monotonic_ns() - info.t_ns <= self._timeout_ns

    async def connect(self) -> None:
        """Waits for steady fresh frames (the camera process started if it is not running,
        with back-off if it keeps dying)."""
        steady_since_ns: int | None = None
        while True:
            if not self._process_alive():
                source = self._source()
                if source is not None:
                    if self._process is not None:
                        await asyncio.sleep(self._backoff.next_delay_s())
                    await self._stop_process()
                    await self._start_process(source)
            # Up once frames have kept coming for a whole timeout: a stream just opened may
            # send one frame and then pause while its decoder settles (FFmpeg's probing: 0.6 s
            # seen here), which would be a loss right after the first frame.
            fresh = self._process_alive() and self._fresh()
            now_ns = time.monotonic_ns()
            steady_since_ns = (steady_since_ns or now_ns) if fresh else None
            if steady_since_ns is not None and now_ns - steady_since_ns >= self._timeout_ns:
                self._backoff.reset()
                self.stats.connected = True
                return
            await asyncio.sleep(POLL_S)

    async def wait_closed(self) -> None:
        while self._process_alive() and self._fresh() and not self._closing:
            # Next look at the poll period or right when the latest frame would be too old,
            # whichever comes first: the loss is seen at the bound, not up to a poll after it.
            last = self.health.last
            delay_s = POLL_S
            if last is not None:
                due_s = (last.t_ns + self._timeout_ns - time.monotonic_ns()) / 1e9 + 0.001
                delay_s = min(delay_s, max(0.001, due_s))
            await asyncio.sleep(delay_s)
        self.stats.connected = False

    async def close(self) -> None:
        """At shutdown: the camera process ends (an open segment closed cleanly)."""
        self._closing = True
        await self._stop_process()
        self.stats.connected = False
        if self._frames is not None:
            self._frames.close()
            self._frames.unlink()
            self._frames = None

    async def _stop_process(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(Exception):
                async with self._lock:
                    await self._exchange(process, {"op": "quit"}, QUIT_TIMEOUT_S)
            try:
                async with asyncio.timeout(QUIT_TIMEOUT_S):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        else:
            await process.wait()

    async def request(self, request: dict[str, Any]) -> dict[str, Any]:
        """One request to the camera process (it does the work; this loop only waits)."""
        process = self._process
        if process is None or not self._process_alive():
            raise CameraError("the camera process is not running")
        async with self._lock:
            reply = await self._exchange(process, request, REQUEST_TIMEOUT_S)
        if not reply.get("ok"):
            raise CameraError(str(reply.get("error")))
        self.pipeline = reply["result"].get("pipeline")
        return reply

    @staticmethod
    async def _exchange(
        process: asyncio.subprocess.Process, request: dict[str, Any], timeout_s: float
    ) -> dict[str, Any]:
        assert process.stdin is not None and process.stdout is not None
        try:
            async with asyncio.timeout(timeout_s):
                process.stdin.write(json.dumps(request).encode() + b"\n")
                await process.stdin.drain()
                line = await process.stdout.readline()
        except (TimeoutError, ConnectionError) as exc:
            raise CameraError(
                f"the camera process did not answer {request['op']}: {exc!r}"
            ) from None
        if not line:
            raise CameraError(f"the camera process ended before answering {request['op']}")
        reply: dict[str, Any] = json.loads(line)
        return reply


class CameraDevice(Device):
    name = "camera"
    connect_errors = ()

    def __init__(self, config: CameraDeviceConfig, port: str, context: DeviceContext) -> None:
        super().__init__(context)
        self.config = config
        self._link = CameraLink(config, port)
        self._recording: tuple[Path, str | None] | None = None
        self.light_permille: int | None = None
        """The LED level the automatic brightness last set; None: none since the video came
        up (the next step sets `light_start_permille`)."""
        self._light_set_ns = 0

    @property
    def link(self) -> CameraLink:
        return self._link

    def provide(self, slots: ActuatorSlots) -> None:
        """Nothing: the camera moves no actuator."""

    async def on_up(self) -> None:
        self.light_permille = None  # from the configured level again: maybe another scope
        self._video(live=True, detail=f"frames from {self._link.url}")
        try:
            reply = await self._link.request({"op": "ping"})
        except CameraError as exc:
            log.warning("camera: %s", exc)
        else:
            if self._recording is not None:
                self._segments(reply, *self._recording)
        if self._recording is not None and not self._link.recording_asked:
            # A camera process started again (the last one died) records on in a new segment.
            await self.record(True, *self._recording)

    def on_lost(self) -> None:
        age = self._link.health.age_ms(time.monotonic_ns())
        detail = (
            "no frame yet"
            if age is None
            else f"no frame for {age:.0f} ms (devices.camera.video_timeout_ms = "
            f"{self.config.video_timeout_ms})"
        )
        self._video(live=False, detail=detail)

    def _video(self, *, live: bool, detail: str) -> None:
        self.context.interlock.set_video_live(live)
        self.context.record(CameraChanged(live=live, detail=detail))

    async def snapshot(self, note: str, record_dir: Path, procedure: str | None) -> JsonObject:
        """A still with what the rig reads now, into `record_dir`/media (PNG + JSON, by the
        camera process), journaled as a `snapshot` event with its path relative to
        `record_dir`."""
        controller = self.context.controller
        pressure = controller.mean_pressure_mmhg
        figures = {
            "pressure_mmhg": None if pressure is None else round(pressure, 2),
            "flow_ml_min": round(controller.applied_flow_ml_min, 4),
        }
        saline_ml = round(controller.saline_ul / 1000.0, 4)
        reply = await self._link.request(
            {
                "op": "snapshot",
                "directory": str(record_dir / MEDIA_DIR),
                "taken_at": datetime.now(UTC).isoformat(),
                "note": note,
                "volume_ml": saline_ml,
                **figures,
            }
        )
        self._segments(reply, record_dir, procedure)
        path = str(Path(reply["result"]["png"]).relative_to(record_dir))
        self.context.record(
            SnapshotTaken(
                procedure=procedure,
                path=path,
                note=note,
                saline_ml=saline_ml,
                contrast_ml=round(controller.contrast_ul / 1000.0, 4),
                **figures,
            )
        )
        return {"path": path}

    async def record(self, start: bool, record_dir: Path, procedure: str | None) -> JsonObject:
        """Start or stop recording to segments in `record_dir`/media/video; each closed
        segment is a `video_segment` event."""
        request: dict[str, Any] = (
            {"op": "record_start", "directory": str(record_dir / MEDIA_DIR / VIDEO_DIR)}
            if start
            else {"op": "record_stop"}
        )
        reply = await self._link.request(request)
        self._link.recording_asked = start
        self._recording = (record_dir, procedure) if start else None
        self._segments(reply, record_dir, procedure)
        return {"recording": start}

    def tasks(self) -> Sequence[Task]:
        return [
            ("camera segments", self._report_segments),
            ("camera brightness", self._brightness),
            ("camera blind infusion", self._stop_infusing_blind),
        ]

    async def _stop_infusing_blind(self) -> None:
        """Fluid flowing into a duct the surgeon has not seen for `video_loss_stop_ms` is
        stopped and latched (H19): nobody sees the tip meet the wall."""
        while True:
            await asyncio.sleep(POLL_S)
            controller = self.context.controller
            if self.context.interlock.video_live is not False or not (
                controller.pump_running and controller.setpoint.mode in IN_DUCT_MODES
            ):
                continue
            age = self._link.health.age_ms(time.monotonic_ns())
            if age is not None and age < self.config.video_loss_stop_ms:
                continue
            self.context.trip(
                StopCause.VIDEO_LOST,
                f"the scope's video was lost while {controller.setpoint.mode}: "
                + ("no frame yet" if age is None else f"no frame for {age:.0f} ms")
                + f" (devices.camera.video_loss_stop_ms = {self.config.video_loss_stop_ms})",
                figures={
                    "no_frame_ms": None if age is None else round(age),
                    "video_loss_stop_ms": self.config.video_loss_stop_ms,
                },
            )

    async def _brightness(self) -> None:
        """Automatic brightness, while the video is live: the LED through the interlock."""
        settings = self.config.brightness()
        refused: str | None = None
        while True:
            await asyncio.sleep(BRIGHTNESS_PERIOD_S)
            if self.context.interlock.video_live is not True:
                continue
            if self.light_permille is None:
                level = settings.start_permille
            else:
                info = self._link.frames.latest_info()
                if info is None or info.t_ns < self._light_set_ns + LIGHT_SETTLE_NS:
                    continue  # no frame yet that shows the last level
                level = next_level(self.light_permille, info.brightness, settings)
                if level == self.light_permille:
                    continue
            try:
                await self.context.interlock.set_light(level)
            except (InterlockDeniedError, LinkClosedError, TimeoutError) as exc:
                if str(exc) != refused:  # once per reason, not five times a second
                    log.warning("camera: the light stays as it is: %s", exc)
                refused = str(exc)
                continue
            refused = None
            self.light_permille = level
            self._light_set_ns = time.monotonic_ns()

    async def _report_segments(self) -> None:
        """Every second the camera process is asked for its closed segments (while recording)
        and its pipeline's figures (it answers only requests)."""
        while True:
            await asyncio.sleep(1.0)
            if not self._link.running:
                continue
            try:
                reply = await self._link.request({"op": "ping"})
            except CameraError as exc:
                log.warning("camera: %s", exc)
                continue
            if self._recording is not None:
                self._segments(reply, *self._recording)

    def _segments(self, reply: dict[str, Any], record_dir: Path, procedure: str | None) -> None:
        for segment in reply.get("segments", []):
            self.context.record(
                VideoSegment(
                    procedure=procedure,
                    path=str(Path(segment["path"]).relative_to(record_dir)),
                    frames=segment["frames"],
                    duration_s=segment["duration_s"],
                )
            )

    def as_dict(self) -> JsonObject:
        """The camera in the daemon's state: live or not, its health."""
        return {
            "live": self.context.interlock.video_live is True,
            "source": self._link.url,
            "recording": self._recording is not None,
            "light_permille": self.light_permille,
            "pipeline": self._link.pipeline if self._link.running else None,
            **self._link.health.as_dict(),
        }
