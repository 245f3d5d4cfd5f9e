"""`rig bench camera`: the scope camera at full size through the whole pipeline, while the fluid
loop irrigates and the tip meets the wall again and again.

The real daemon on the simulator (as `rig sim` runs it), with the simulated camera added to the
profile at the asked size and rate (1920x1080 at 30 fps by default). The camera process
captures, measures, runs the pipeline (crop, core interpolation, mask), records to segments
and sends the view through the broker to a viewer this bench keeps (with a lease, as a
console does: rig/camera/stream.py). Meanwhile `rig bench
stop-latency`'s trial (rig/bench/stop_latency.py, `stop_trial`) runs `--trials` times: irrigate,
tip against the wall, the stop measured.

- `fps_mean`: frames captured over the run's wall time; `dropped_frames`: frames missing from
  the capture (gaps in the capture stamps over 1.5 frame periods, counted in frames: the
  simulator's own shortfall counts too, since the camera process cannot tell it apart).
  `sim_fps_mean`: the frames the simulator rendered, for that reason.
- `latency_p50_ms`, `latency_p95_ms`: from the capture stamp (CLOCK_MONOTONIC, stamped by the
  capture thread as the frame arrives) to the view's JPEG of that frame received whole by
  the viewer here, through the broker (each frame carries its stamp).
- `cpu_per_frame_ms`: the camera process's CPU time (all its threads: capture and decode,
  brightness, pipeline, recording's encoder, the video stream's encoder) over the frames captured.
  `baseline_cpu_per_frame_ms`: bare OpenCV on the same frames (the first 60 of the simulator's
  JPEGs, taken from its stream): decode, and encode once at the video stream's quality, on a
  thread of this process at the camera process's priority (SCHED_IDLE), five frames a second
  during the run, so under the same load and scheduling as the camera process. `cpu_over_baseline` is their ratio
  (at most 1.5). `baseline_quiet_cpu_per_frame_ms`: the same after the run, at ordinary
  priority with the machine calmer (the cost with warm caches).
- `fluid_loop_jitter_p99_ms`: how late the daemon's event loop woke (the loop-stall guard's
  5 ms beat; every timer of the fluid loop shares that loop), p99 over the last minute of
  the run. `fluid_loop_scheduling`: how that loop ran ("SCHED_FIFO 10", or "ordinary" where
  real-time scheduling was refused: drivers/realtime.py).
- `stop_latency_p99_ms`, `floor_ms`: stop-latency's figures, from the trials during the video.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

import cv2
import numpy as np

from drivers.background import run_thread_in_background
from drivers.transport.mqtt import JsonObject
from drivers.transport.tasks import cancel_and_wait
from rig.bench.session import BenchError, BenchSession, engineer_session, percentile
from rig.bench.stop_latency import FLOW_ML_MIN, stop_floor_ms, stop_trial
from rig.camera.stream import LEASE_RENEW_S, VIDEO_JPEG_QUALITY, unpack_frame
from rig.config import ProfileError, RigProfile, load_profile
from rig.devices.camera_config import SIM_URL_FILE
from rig.launcher import SimRig, start_sim_rig

BASELINE_FRAMES = 60
CAMERA_UP_S = 60.0
"""The camera process's start, the stream's probing and the core interpolation's calibration
(a second or two at 1080p on a loaded machine)."""


@dataclass(frozen=True)
class SimCamera:
    """The simulator's camera a camera bench adds to the profile: its frame size and rate."""

    width_px: int
    height_px: int
    fps: float

    @property
    def frame_size(self) -> str:
        return f"{self.width_px}x{self.height_px}"

    def profile_section(self) -> str:
        return (
            "\n[devices.camera]\n"
            'port = { sim = "camera" }\n'
            f"width = {self.width_px}\nheight = {self.height_px}\nfps = {self.fps:g}\n"
        )


class MjpegReader:
    """A viewer of an MJPEG stream on this host (a thread): each JPEG with its part's headers."""

    def __init__(self, url: str, on_part: Callable[[dict[str, str], bytes, int], None]) -> None:
        self._url = urlsplit(url)
        self._on_part = on_part
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="bench mjpeg", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5.0)

    def _run(self) -> None:
        try:
            host, port = self._url.hostname or "127.0.0.1", self._url.port or 80
            with socket.create_connection((host, port), timeout=5.0) as sock:
                sock.sendall(f"GET {self._url.path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
                stream = sock.makefile("rb")
                while stream.readline() not in (b"\r\n", b""):
                    pass  # the response's headers
                while not self._stop.is_set():
                    headers = _part_headers(stream)
                    if headers is None:
                        return
                    body = stream.read(int(headers["content-length"]))
                    try:
                        self._on_part(headers, body, time.monotonic_ns())
                    except StopIteration:
                        return  # the viewer has seen enough
                    stream.readline()  # the CRLF after the body
        except (OSError, KeyError, ValueError) as exc:
            if not self._stop.is_set():
                self.error = exc


def _part_headers(stream: BinaryIO) -> dict[str, str] | None:
    headers: dict[str, str] = {}
    while True:
        line = stream.readline()
        if not line:
            return None
        text = line.decode("latin-1").strip()
        if not text:
            if headers:
                return headers
            continue
        if text.startswith("--"):
            continue  # the boundary
        name, _, value = text.partition(":")
        headers[name.strip().lower()] = value.strip()


def process_cpu_s(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / _CLOCK_TICKS


_CLOCK_TICKS = float(os.sysconf("SC_CLK_TCK"))


def camera_process_pid(daemon_pid: int) -> int:
    for task in Path(f"/proc/{daemon_pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"rig.camera.process" in cmdline:
                return int(child)
    raise BenchError(f"no camera process under the daemon (pid {daemon_pid})")


class Baseline:
    """Bare decode + encode during the run, paced, at the camera process's priority."""

    PERIOD_S = 0.2

    def __init__(self, jpegs: list[bytes]) -> None:
        self._jpegs = jpegs
        self.cpu_s = 0.0
        self.frames = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="bench baseline", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5.0)

    def _run(self) -> None:
        run_thread_in_background()  # as the camera process
        while not self._stop.wait(self.PERIOD_S):
            if len(self._jpegs) < BASELINE_FRAMES:
                continue  # still collecting
            jpeg = self._jpegs[self.frames % BASELINE_FRAMES]
            self.cpu_s += baseline_cpu_ms([jpeg]) / 1000.0
            self.frames += 1


def baseline_cpu_ms(jpegs: list[bytes]) -> float:
    """Bare OpenCV per frame: decode, and encode once at the video stream's quality (one
    thread)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, VIDEO_JPEG_QUALITY]
    started = time.thread_time()
    for jpeg in jpegs:
        frame = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        if frame is None:
            raise BenchError("a JPEG from the simulator's stream did not decode")
        cv2.imencode(".jpg", frame, params)
    return (time.thread_time() - started) * 1000.0 / len(jpegs)


@contextlib.contextmanager
def _camera_profile(profile_path: Path, camera: SimCamera) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="rig-bench-camera-") as tmp:
        path = Path(tmp) / "camera.toml"
        path.write_text(profile_path.read_text() + camera.profile_section())
        yield path


@contextlib.asynccontextmanager
async def camera_rig(
    profile_path: Path, profile: RigProfile, camera: SimCamera
) -> AsyncIterator[SimRig]:
    """`rig sim` on the profile with the simulated camera added at that size and rate (its
    `profile` is the one with the camera)."""
    if profile.devices.camera is not None:
        raise BenchError(
            f"{profile_path}: has a [devices.camera] already; the bench adds its own "
            "(the simulator's, at --frame-size and --fps)"
        )
    with _camera_profile(profile_path, camera) as path:
        try:
            camera_profile = load_profile(path)
        except ProfileError as exc:
            raise BenchError(
                f"the camera at {camera.frame_size}, {camera.fps:g} fps:\n{exc}"
            ) from None
        rig = await start_sim_rig(path, camera_profile)
        try:
            yield rig
        finally:
            await rig.stop()


async def run_camera(
    profile_path: Path,
    profile: RigProfile,
    trials: int,
    camera: SimCamera,
    *,
    progress: bool = False,
) -> JsonObject:
    async with camera_rig(profile_path, profile, camera) as rig:
        try:
            figures = await _run(rig, rig.profile, trials, progress)
        except BenchError as exc:
            raise BenchError(f"{exc} (logs in {rig.run_dir})") from None
    return {
        "benchmark": "camera",
        "frame_size": camera.frame_size,
        "fps": camera.fps,
        "stop_trials": trials,
        **figures,
    }


async def _run(rig: SimRig, profile: RigProfile, trials: int, progress: bool) -> JsonObject:
    latencies_ms: list[float] = []
    jpegs: list[bytes] = []

    def on_sim_frame(headers: dict[str, str], body: bytes, received_ns: int) -> None:
        if len(jpegs) < BASELINE_FRAMES:
            jpegs.append(body)
        else:  # enough: reading a 1080p stream at 30 fps costs this process a good part of a core
            raise StopIteration

    rng = random.Random(profile.simulator.seed if profile.simulator else 0)
    stop_ms: list[float] = []
    async with engineer_session(rig) as session:
        session.events = await session.mqtt.subscribe(session.topics.events)
        await session.ready()
        camera = await _camera_up(session)
        assert rig.daemon is not None
        pid = camera_process_pid(rig.daemon.pid)
        viewer = asyncio.create_task(watch_video(session, latencies_ms))
        sim_url = (rig.link_dir / SIM_URL_FILE).read_text().strip()
        sim_stream = MjpegReader(sim_url, on_sim_frame)
        reply = await session.command({"op": "camera.record", "recording": "start"})
        if not reply.get("ok"):
            raise BenchError(f"camera.record start refused: {reply}")
        baseline = Baseline(jpegs)
        try:
            latencies_ms.clear()
            cpu0, frames0, dropped0 = process_cpu_s(pid), camera["frames"], camera["dropped_frames"]
            sim0, t0 = await _sim_frames(session), time.monotonic()
            for index in range(trials):
                try:
                    latency_ms, _, cause = await stop_trial(session, rng, FLOW_ML_MIN)
                except BenchError as exc:
                    raise BenchError(f"stop trial {index + 1} of {trials}: {exc}") from None
                stop_ms.append(latency_ms)
                if progress:
                    print(f"stop {index + 1}/{trials}: {latency_ms:.2f} ms ({cause})", flush=True)
            state = await session.status()
            elapsed_s = time.monotonic() - t0
            cpu_s, sim_n = process_cpu_s(pid) - cpu0, await _sim_frames(session) - sim0
        finally:
            await cancel_and_wait(viewer)
            sim_stream.stop()
            baseline.stop()
        await session.command({"op": "camera.record", "recording": "stop"})
    camera = state["camera"]
    if camera_process_pid(rig.daemon.pid) != pid:
        raise BenchError("the camera process was started again during the run")
    if sim_stream.error is not None:
        raise BenchError(f"the simulator's stream viewer failed: {sim_stream.error!r}")
    frames = camera["frames"] - frames0
    if frames <= 0 or not latencies_ms or not jpegs:
        raise BenchError(f"no video during the run: {frames} frames, {len(latencies_ms)} viewed")
    cpu_ms = cpu_s * 1000.0 / frames
    quiet_ms = baseline_cpu_ms(jpegs)
    baseline_ms = baseline.cpu_s * 1000.0 / baseline.frames if baseline.frames else quiet_ms
    stop_p99 = percentile(stop_ms, 99)
    loop = state.get("loop_lateness_ms") or {}
    return {
        "duration_s": round(elapsed_s, 1),
        "fps_mean": round(frames / elapsed_s, 2),
        "sim_fps_mean": round(sim_n / elapsed_s, 2),
        "dropped_frames": camera["dropped_frames"] - dropped0,
        "video_frames": len(latencies_ms),
        "latency_p50_ms": round(percentile(latencies_ms, 50), 2),
        "latency_p95_ms": round(percentile(latencies_ms, 95), 2),
        "pipeline": camera.get("pipeline"),
        "cpu_per_frame_ms": round(cpu_ms, 2),
        "baseline_cpu_per_frame_ms": round(baseline_ms, 2),
        "baseline_frames": baseline.frames,
        "cpu_over_baseline": round(cpu_ms / baseline_ms, 3),
        "baseline_quiet_cpu_per_frame_ms": round(quiet_ms, 2),
        "fluid_loop_jitter_p50_ms": loop.get("p50"),
        "fluid_loop_jitter_p99_ms": loop.get("p99"),
        "fluid_loop_jitter_max_ms": loop.get("max"),
        "fluid_loop_scheduling": state.get("loop_scheduling"),
        "stop_latency_p50_ms": round(percentile(stop_ms, 50), 3),
        "stop_latency_p99_ms": round(stop_p99, 3),
        "floor_ms": round(stop_floor_ms(profile), 3),
        "stop_p99_over_floor": round(stop_p99 / stop_floor_ms(profile), 3),
    }


async def watch_video(session: BenchSession, latencies_ms: list[float]) -> None:
    """The view through the broker, as a console watches it (a lease every LEASE_RENEW_S):
    each frame's latency from its capture stamp to its arrival here."""
    frames = await session.mqtt.subscribe(session.topics.video, keep=4)
    renew_at = 0.0
    while True:
        if time.monotonic() >= renew_at:
            await session.mqtt.publish(session.topics.video_lease, b"1")
            renew_at = time.monotonic() + LEASE_RENEW_S
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LEASE_RENEW_S):
                message = await frames.get()
                received_ns = time.monotonic_ns()
                if isinstance(message.payload, bytes):
                    header, _ = unpack_frame(message.payload)
                    latencies_ms.append((received_ns - int(header["t_ns"])) / 1e6)


async def _sim_frames(session: BenchSession) -> int:
    """The frames the simulator's camera has rendered so far."""
    camera = (await session.sim("state")).get("camera") or {}
    return int(camera.get("frames") or 0)


async def _camera_up(session: BenchSession) -> JsonObject:
    """The camera live, lit, with its pipeline calibrated."""
    deadline = time.monotonic() + CAMERA_UP_S
    while time.monotonic() < deadline:
        camera = (await session.status()).get("camera") or {}
        pipeline = camera.get("pipeline") or {}
        if (
            camera.get("live")
            and camera.get("light_permille")
            and pipeline.get("method")
            not in (
                None,
                "raw",
            )
        ):
            return dict(camera)
        await asyncio.sleep(0.2)
    raise BenchError(f"the camera was not up, lit and calibrated within {CAMERA_UP_S:.0f} s")
