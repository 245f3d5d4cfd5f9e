"""`rig bench console-video`: from the camera's capture to the frame drawn on the console's page.

The real daemon on the simulator with its camera (1920x1080 at 30 fps by default: the view is
the field's 469x469 square after the pipeline), `rig console`'s server logged in as the surgeon
and Debian's Chromium showing the page (Playwright, headless). The path measured is the one an
operating room has: camera process -> the rig's broker -> the console's server -> its page
(rig/camera/stream.py, rig/console/server.py, rig/console/static/video.js).

- `p50_ms`, `p99_ms`, `max_ms`: each frame's capture stamp (CLOCK_MONOTONIC in the capture
  thread, sent as wall-clock ms) to the page having drawn it on its canvas (its display follows
  at the next compositor frame); both clocks are this machine's. Frames of the first seconds
  (the camera's start, the pipeline's calibration, the page's start-up) are left out.
- `subscriber_p50_ms`, `subscriber_p99_ms`: the same capture stamp to the frame's arrival at a
  plain MQTT client of the broker here (an engineer's, beside the console): the part of the
  latency that is the camera process and the broker; the rest is the console's server and the
  browser. `broker_hop_p50_ms`, `broker_hop_p99_ms`: from the camera process handing the frame
  to its broker connection (after the JPEG encoding) to that arrival: the broker's share.
- `page_arrival_p50_ms`, `page_arrival_p99_ms`: to the frame's arrival in the page's script
  (the console's server and the WebSocket done; the JPEG's decoding and drawing still to come).
- `frames_captured` (the camera's own count), `frames_received` and `frames_drawn` by the page:
  what each stage skipped (each skips to the newest frame when it falls behind).
- `frame_kb_mean`: the JPEGs' mean size; `broker_kb_s`: what the broker forwarded to this one
  console; `broker_cpu_percent`: Mosquitto's CPU time over the run (of one core).
- `load_1min`, `cpu_pressure_some_avg10`: the machine's load at the end of the run (other
  sessions share it: the figures mean little without it).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

from drivers.transport.mqtt import JsonObject, MqttEndpoint
from drivers.transport.tasks import cancel_and_wait
from rig.api.roles import Role
from rig.api.topics import RigTopics
from rig.bench.browser import chromium
from rig.bench.camera import CAMERA_UP_S, SimCamera, camera_rig, process_cpu_s
from rig.bench.session import BenchError, machine_load, percentile, percentile_figure
from rig.bench.telemetry_latency import surgeon_console_page
from rig.camera.stream import unpack_frame
from rig.config import RigProfile
from rig.console.server import ConsoleServer
from rig.launcher import SimRig

WARM_UP_S = 3.0
"""After the first frame on the page: the pipeline calibrates on the first lit frame."""


async def run_console_video(
    profile_path: Path,
    profile: RigProfile,
    duration_s: float,
    camera: SimCamera,
) -> JsonObject:
    async with (
        chromium() as browser,  # before the rig: its start-up burst starves a rig (browser.py)
        camera_rig(profile_path, profile, camera) as rig,
        surgeon_console_page(rig, browser) as (page, server),
    ):
        broker_pid = None if rig.broker is None else rig.broker.pid
        await page.wait_for_function(
            "() => window.__console.video.frames > 0", timeout=CAMERA_UP_S * 1000
        )
        await asyncio.sleep(WARM_UP_S)
        await page.evaluate(
            "() => { const v = window.__console.video;"
            " v.latencyMs = []; v.arrivalMs = []; v.frames = 0; v.bytes = 0; v.received = 0; }"
        )
        cpu0 = 0.0 if broker_pid is None else process_cpu_s(broker_pid)
        captured0 = await _frames_captured(server)
        t0 = time.monotonic()
        async with _subscriber(rig) as (arrivals, hops):
            await asyncio.sleep(duration_s)
        seen: JsonObject = await page.evaluate("() => window.__console.video")
        elapsed_s = time.monotonic() - t0
        captured = await _frames_captured(server) - captured0
        cpu_s = None if broker_pid is None else process_cpu_s(broker_pid) - cpu0
    latencies: list[float] = seen["latencyMs"]
    if not latencies:
        raise BenchError("no video frame reached the page")
    return {
        "benchmark": "console-video",
        "measured": "capture stamp -> frame drawn on the console page's canvas (camera process "
        "-> broker -> console server -> Chromium, headless)",
        "frame_size": camera.frame_size,
        "fps": camera.fps,
        "duration_s": round(elapsed_s, 1),
        "subscriber_p50_ms": percentile_figure(arrivals, 50, 2),
        "subscriber_p99_ms": percentile_figure(arrivals, 99, 2),
        "broker_hop_p50_ms": percentile_figure(hops, 50, 2),
        "broker_hop_p99_ms": percentile_figure(hops, 99, 2),
        "frames_captured": captured,
        "frames_drawn": seen["frames"],
        "frames_received": seen["received"],
        "frames_expected": round(camera.fps * elapsed_s),
        "page_arrival_p50_ms": round(percentile(seen["arrivalMs"], 50), 2),
        "page_arrival_p99_ms": round(percentile(seen["arrivalMs"], 99), 2),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies), 2),
        "frame_kb_mean": round(seen["bytes"] / max(1, seen["received"]) / 1000, 1),
        "broker_kb_s": round(seen["bytes"] / elapsed_s / 1000, 1),
        "broker_cpu_percent": None if cpu_s is None else round(100 * cpu_s / elapsed_s, 1),
        **machine_load(),
    }


async def _frames_captured(server: ConsoleServer) -> int:
    reply = await server.command({"op": "status"})
    camera = (reply.get("result") or {}).get("camera") or {}
    return int(camera.get("frames") or 0)


@contextlib.asynccontextmanager
async def _subscriber(rig: SimRig) -> AsyncIterator[tuple[list[float], list[float]]]:
    """An engineer's plain MQTT client on the video (no lease of its own): each frame's latency
    from its capture stamp, and from its hand-over to the broker, to its arrival here."""
    latencies: list[float] = []
    hops: list[float] = []
    username, password = rig.credentials_of(Role.ENGINEER)
    async with MqttEndpoint(
        rig.broker_host, rig.broker_port, username=username, password=password
    ) as mqtt:
        frames = await mqtt.subscribe(RigTopics(rig.profile.rig_id).video, keep=4)

        async def arrive() -> None:
            while True:
                message = await frames.get()
                arrived_ns, arrived_ms = time.monotonic_ns(), time.time_ns() / 1e6
                if isinstance(message.payload, bytes):
                    header, _ = unpack_frame(message.payload)
                    latencies.append((arrived_ns - int(header["t_ns"])) / 1e6)
                    hops.append(arrived_ms - float(header["sent_ms"]))

        task = asyncio.create_task(arrive())
        try:
            yield latencies, hops
        finally:
            await cancel_and_wait(task)
