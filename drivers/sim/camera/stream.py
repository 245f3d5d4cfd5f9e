"""The simulated camera as a real one's stream: MJPG frames over HTTP, which OpenCV opens.

A network camera (or `ffmpeg`/`mjpg-streamer` in front of a V4L2 one) serves its frames as
`multipart/x-mixed-replace` JPEGs; `cv2.VideoCapture(url)` opens that as it opens a camera, so
the rig's capture path is the same code for the simulator and a bench, and no frame is handed
over in memory.

The camera is a process of its own (`SimCameraStream` starts it; `CameraServer` runs in it), as
background work (SCHED_IDLE, drivers/background.py): a real camera is its own hardware, and
rendering 1080p at 30 fps (a third of a core since the scene draws only the field and redraws
the wall only when the tip moves; a core before) in the simulator's process made the emulated
board's pressure samples late (the daemon stopped the pump for stale pressure). The simulator feeds it the world it needs (the LED
level, whether saline flows, the basket) through a few shared numbers every 20 ms, and reads
back its frame count and haze.

One render thread draws the scene (`DuctScene`) at the configured rate from the simulator's
world as it is at that moment, encodes it once, and every connected client gets that JPEG.
`unplug()` drops every client and refuses new ones (an unplugged camera); `plug()` serves
again. The URL is written to `<link_dir>/camera.url` for the daemon to find, like the
pseudo-terminals' links.

CPU: at 320x240 a frame costs about 1 ms to render and 1 ms to encode; the thread sleeps the rest.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2

from drivers.background import run_in_background
from drivers.sim.camera.scene import DuctScene, DuctSceneParams, View

log = logging.getLogger(__name__)

URL_FILE = "camera.url"
WHITE_FILE = "camera-white.png"
"""What this camera shows of a white target (its bundle's transmission): the calibration a real
procedure takes at its start, holding the scope to a white card, written once at start."""
BOUNDARY = "simcamframe"
JPEG_QUALITY = 80


@dataclass(frozen=True)
class CameraSettings:
    width_px: int = 320
    height_px: int = 240
    fps: float = 15.0
    seed: int = 0
    depth_mm: float = 29.5
    """Where the tip is: 2.5 mm short of the papilloma, which is then in view."""


def parse_camera(text: str, seed: int = 0) -> CameraSettings:
    """`320x240@15` (the simulator's --camera) to settings."""
    size, _, fps = text.partition("@")
    width, _, height = size.partition("x")
    try:
        settings = CameraSettings(int(width), int(height), float(fps), seed)
    except ValueError:
        raise ValueError(f"--camera {text}: expected WIDTHxHEIGHT@FPS, e.g. 320x240@15") from None
    if settings.width_px < 16 or settings.height_px < 16 or not 0 < settings.fps <= 120:
        raise ValueError(f"--camera {text}: expected at least 16x16 px and 0 < fps <= 120")
    return settings


@dataclass(frozen=True)
class WorldView:
    """What the camera needs of the simulated world, read at each frame."""

    led_level: float
    saline_flowing: bool
    basket_deployed: bool = False
    lesion_present: bool = True


class CameraServer:
    """The render thread and the HTTP server (in the camera's own process)."""

    def __init__(
        self, settings: CameraSettings, link_dir: Path, world: Callable[[], WorldView]
    ) -> None:
        self.settings = settings
        self._url_file = link_dir / URL_FILE
        self._white_file = link_dir / WHITE_FILE
        self._world = world
        self._scene = DuctScene(
            settings.seed,
            DuctSceneParams(width_px=settings.width_px, height_px=settings.height_px),
        )
        self._jpeg = b""
        self._frames = 0
        self._new_frame = threading.Condition()
        self._stop = threading.Event()
        self.plugged = True
        self._plug_epoch = 0
        """Counts unplugs: a client's stream ends when the epoch it started in has passed."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._threads = [
            threading.Thread(target=self._render_loop, name="sim camera", daemon=True),
            threading.Thread(
                target=self._server.serve_forever, name="sim camera http", daemon=True
            ),
        ]

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/stream.mjpg"

    @property
    def frames(self) -> int:
        return self._frames

    def start(self) -> None:
        cv2.imwrite(str(self._white_file), self._scene.bundle.transmission)
        for thread in self._threads:
            thread.start()
        self._url_file.write_text(self.url + "\n")

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        with self._new_frame:
            self._new_frame.notify_all()
        for thread in self._threads:
            thread.join(timeout=2.0)

    def unplug(self) -> None:
        with self._new_frame:
            self.plugged = False
            self._plug_epoch += 1
            self._new_frame.notify_all()

    def plug(self) -> None:
        self.plugged = True

    @property
    def haze(self) -> float:
        return float(self._scene.haze)

    def _render_loop(self) -> None:
        period_s = 1.0 / self.settings.fps
        params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
        last_s = next_s = time.monotonic()
        while not self._stop.is_set():
            now_s = time.monotonic()
            world = self._world()
            self._scene.step(now_s - last_s, saline_flowing=world.saline_flowing)
            last_s = now_s
            frame = self._scene.render(
                View(
                    depth_mm=self.settings.depth_mm,
                    led_level=world.led_level,
                    basket_deployed=world.basket_deployed,
                    lesion_present=world.lesion_present,
                )
            )
            ok, jpeg = cv2.imencode(".jpg", frame, params)
            if ok:
                with self._new_frame:
                    self._jpeg = jpeg.tobytes()
                    self._frames += 1
                    self._new_frame.notify_all()
            next_s = max(next_s + period_s, time.monotonic())  # late: no burst to catch up
            self._stop.wait(next_s - time.monotonic())

    def next_jpeg(self, seen: int, epoch: int) -> tuple[bytes, int] | None:
        """The first frame after frame number `seen`, waiting for it; None once unplugged (or
        re-plugged since `epoch`) or stopped."""
        with self._new_frame:
            while self._frames <= seen:
                if self._stop.is_set() or not self.plugged or self._plug_epoch != epoch:
                    return None
                self._new_frame.wait(1.0)
            if not self.plugged or self._plug_epoch != epoch:
                return None
            return self._jpeg, self._frames

    @property
    def epoch(self) -> int:
        return self._plug_epoch


def _handler(stream: CameraServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/stream.mjpg":
                self.send_error(404)
                return
            if not stream.plugged:
                self.send_error(503, "camera unplugged")
                return
            epoch, seen = stream.epoch, stream.frames
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            try:
                while (got := stream.next_jpeg(seen, epoch)) is not None:
                    jpeg, seen = got
                    self.wfile.write(
                        f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                        f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                        + jpeg
                        + b"\r\n"
                    )
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return  # the client went away

        def log_message(self, format: str, *args: object) -> None:
            log.debug("sim camera http: " + format, *args)

    return Handler


# The numbers the simulator and its camera process share (float64 each).
_SHARED = ("led", "flowing", "basket", "lesion", "plugged", "stop", "frames", "haze")
_LED, _FLOWING, _BASKET, _LESION, _PLUGGED, _STOP, _FRAMES, _HAZE = range(len(_SHARED))
FEED_PERIOD_S = 0.02


class SimCameraStream:
    """The simulator's handle on its camera process."""

    def __init__(
        self, settings: CameraSettings, link_dir: Path, world: Callable[[], WorldView]
    ) -> None:
        self.settings = settings
        self._url_file = link_dir / URL_FILE
        self._world = world
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no sim threads
        self._shared = context.RawArray("d", len(_SHARED))
        self._shared[_LESION] = 1.0
        self._shared[_PLUGGED] = 1.0
        self._process = context.Process(
            target=_camera_process,
            args=(settings, link_dir, self._shared, os.getpid()),
            name="sim camera",
            daemon=True,
        )
        self._stopping = threading.Event()
        self._feeder = threading.Thread(target=self._feed, name="sim camera feed", daemon=True)

    @property
    def plugged(self) -> bool:
        return bool(self._shared[_PLUGGED])

    @property
    def frames(self) -> int:
        return int(self._shared[_FRAMES])

    @property
    def url(self) -> str | None:
        try:
            return self._url_file.read_text().strip() or None
        except OSError:
            return None  # not serving yet

    def start(self) -> None:
        self._feed_once()
        self._process.start()
        self._feeder.start()

    def stop(self) -> None:
        self._stopping.set()
        self._shared[_STOP] = 1.0
        self._process.join(timeout=3.0)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._feeder.join(timeout=1.0)

    def unplug(self) -> None:
        self._shared[_PLUGGED] = 0.0

    def plug(self) -> None:
        self._shared[_PLUGGED] = 1.0

    def state(self) -> dict[str, object]:
        return {
            "plugged": self.plugged,
            "frames": self.frames,
            "haze": round(self._shared[_HAZE], 3),
            "url": self.url,
        }

    def _feed(self) -> None:
        while not self._stopping.wait(FEED_PERIOD_S):
            self._feed_once()

    def _feed_once(self) -> None:
        world = self._world()
        self._shared[_LED] = world.led_level
        self._shared[_FLOWING] = float(world.saline_flowing)
        self._shared[_BASKET] = float(world.basket_deployed)
        self._shared[_LESION] = float(world.lesion_present)


def _camera_process(settings: CameraSettings, link_dir: Path, shared: Any, parent_pid: int) -> None:
    """The camera process: serves until told to stop or its simulator is gone."""
    run_in_background()  # below the simulator and the daemon, as the rig's video

    def world() -> WorldView:
        return WorldView(
            shared[_LED], bool(shared[_FLOWING]), bool(shared[_BASKET]), bool(shared[_LESION])
        )

    server = CameraServer(settings, link_dir, world)
    server.start()
    try:
        while not shared[_STOP] and os.getppid() == parent_pid:
            plugged = bool(shared[_PLUGGED])
            if plugged != server.plugged:
                (server.plug if plugged else server.unplug)()
            shared[_FRAMES] = float(server.frames)
            shared[_HAZE] = server.haze
            time.sleep(FEED_PERIOD_S)
    finally:
        server.stop()
