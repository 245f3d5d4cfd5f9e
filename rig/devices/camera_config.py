"""The [devices.camera] section: the scope camera, where its frames come from and their size.

`port` names the source:
- `{ path = "/dev/video0" }`: a V4L2 camera (asked for MJPG at `width`x`height`, `fps`);
- `{ path = "http://..." }` (or rtsp://): a camera's MJPEG stream;
- `{ path = "/data/procedure-12/seg-000001.avi" }`: a recorded file, replayed at `fps`;
- `{ usb = { vid = ..., pid = ... } }`: the V4L2 camera with that USB id;
- `{ sim = "camera" }`: the simulator's camera stream (its URL in the run's link directory).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Self

from pydantic import model_validator

from drivers.transport.discovery import PortResolutionError, SerialPortInfo
from rig.camera.brightness import BrightnessSettings
from rig.config.bounds import Bound, field_default, register_bounds
from rig.config.errors import Problem, cross_check
from rig.config.ports import ConsolePort, PathPort, UsbPort
from rig.devices.section import DeviceSection

SIM_URL_FILE = "camera.url"
"""Where the simulator writes its camera's URL in the link directory (drivers/sim/camera)."""
URL_FILE_PREFIX = "url-file:"
SIM_WHITE_FILE = "camera-white.png"
"""The simulator's white target, beside its URL (drivers/sim/camera/stream.py)."""
"""A port the daemon reads the stream's URL from when it connects (the simulator's)."""
V4L2_SYSFS = Path("/sys/class/video4linux")

register_bounds(
    Bound(
        "devices.camera.width",
        "px",
        640,
        "engineering choice: the bundle carries ~110 samples across its field (docs/camera.md), "
        "so 640x480 loses nothing; 1920x1080 is the largest a USB 2 MJPG camera sends at 30 fps",
        160,
        1920,
    ),
    Bound("devices.camera.height", "px", 480, "as devices.camera.width", 120, 1080),
    Bound(
        "devices.camera.brightness_target",
        "grey level",
        60,
        "engineering choice: the field's mean luma (0..255) the automatic brightness holds, "
        "the bundle's dark mesh included (it halves the mean): the cores then sit near mid-grey, "
        "the wall near the tip well below saturation, the far duct still visible",
        20,
        200,
    ),
    Bound(
        "devices.camera.light_start_permille",
        "permille",
        400,
        "engineering choice: the LED level set when the camera connects, before any frame is "
        "measured; the automatic brightness takes it from there",
        20,
        1000,
    ),
    Bound(
        "devices.camera.light_max_permille",
        "permille",
        1000,
        "engineering choice: the automatic brightness never sets more (the light at the tip "
        "warms the tissue it falls on; lower it for a brighter source than the rig's LED)",
        20,
        1000,
    ),
    Bound(
        "devices.camera.fps",
        "Hz",
        30.0,
        "engineering choice: 30 fps is what scopes' cameras send; below 5 the surgeon cannot "
        "steer by the picture",
        5,
        60,
    ),
    Bound(
        "devices.camera.video_timeout_ms",
        "ms",
        400,
        "issue 8: loss of video raises its alarm within 0.5 s; no frame for this long is lost "
        "video (basket closing needs live video, H25). At least a few frame periods",
        100,
        2000,
    ),
    Bound(
        "devices.camera.video_loss_stop_ms",
        "ms",
        1000,
        "H19: no frame for this long while saline or contrast flows into the duct stops it. "
        "After the video alarm (video_timeout_ms), and about a surgeon's reaction time: a "
        "shorter freeze is not acted on at the console either, and a host short of CPU starves "
        "the niced video first (405 ms without a frame seen at load 10 on 2 cores)",
        200,
        3000,
    ),
)


class CameraDeviceConfig(DeviceSection):
    """The scope camera (V4L2, a stream, a recorded file, or the simulator's)."""

    _section: ClassVar[str] = "devices.camera"

    width: int = field_default("devices.camera.width")
    height: int = field_default("devices.camera.height")
    fps: float = field_default("devices.camera.fps")
    video_timeout_ms: int = field_default("devices.camera.video_timeout_ms")
    video_loss_stop_ms: int = field_default("devices.camera.video_loss_stop_ms")
    brightness_target: float = field_default("devices.camera.brightness_target")
    light_start_permille: int = field_default("devices.camera.light_start_permille")
    light_max_permille: int = field_default("devices.camera.light_max_permille")
    white_target: Path | None = None
    """A PNG of a white target through the scope at this size (the core interpolation's
    calibration, rig/camera/view.py); None: the Gaussian. The simulator's is found by itself."""

    @model_validator(mode="after")
    def _checks(self) -> Self:
        problems = []
        if isinstance(self.port, ConsolePort):
            problems.append(
                Problem(
                    "devices.camera.port",
                    {"console": self.port.console},
                    "the camera is attached to the rig: expected a path, usb or sim port",
                )
            )
        if self.video_timeout_ms < 3000 / self.fps:
            problems.append(
                Problem(
                    "devices.camera.video_timeout_ms",
                    self.video_timeout_ms,
                    f"at least three frame periods at devices.camera.fps = {self.fps:g} "
                    f"({3000 / self.fps:.0f} ms)",
                )
            )
        if self.video_loss_stop_ms < self.video_timeout_ms:
            problems.append(
                Problem(
                    "devices.camera.video_loss_stop_ms",
                    self.video_loss_stop_ms,
                    "at least devices.camera.video_timeout_ms = "
                    f"{self.video_timeout_ms} (the alarm comes before the stop)",
                )
            )
        if self.light_start_permille > self.light_max_permille:
            problems.append(
                Problem(
                    "devices.camera.light_start_permille",
                    self.light_start_permille,
                    f"at most devices.camera.light_max_permille = {self.light_max_permille}",
                )
            )
        cross_check(problems)
        return self

    def white_target_for(self, port: str) -> Path | None:
        """The white target for the source `port`: the simulator's own, or the configured one."""
        if port.startswith(URL_FILE_PREFIX):
            return Path(port.removeprefix(URL_FILE_PREFIX)).parent / SIM_WHITE_FILE
        return self.white_target

    def brightness(self) -> BrightnessSettings:
        return BrightnessSettings(
            target=self.brightness_target,
            start_permille=self.light_start_permille,
            max_permille=self.light_max_permille,
        )

    def sim_port(self, name: str, link_dir: Path) -> str:
        return URL_FILE_PREFIX + str(link_dir / SIM_URL_FILE)

    def real_port(self, attached: Sequence[SerialPortInfo]) -> str:
        del attached
        spec = self.port
        if isinstance(spec, PathPort):
            return spec.path
        if isinstance(spec, UsbPort):
            return v4l2_device(spec.usb.vid, spec.usb.pid, spec.usb.serial_number)
        raise PortResolutionError(f"devices.camera.port: {spec!r} is not a camera's source")

    def port_override(self, override: str, attached: Sequence[SerialPortInfo]) -> str:
        return override  # a device path, URL or file, opened as given


def v4l2_device(vid: int, pid: int, serial_number: str | None = None) -> str:
    """The capture node (/dev/videoN, the lowest of the device's) of the USB camera with these
    ids, from sysfs."""
    found = []
    for node in sorted(V4L2_SYSFS.glob("video*")):
        usb = (node / "device").resolve().parent
        try:
            ids = (usb / "idVendor").read_text().strip(), (usb / "idProduct").read_text().strip()
            serial = (usb / "serial").read_text().strip() if (usb / "serial").exists() else None
        except OSError:
            continue
        if ids == (f"{vid:04x}", f"{pid:04x}") and serial_number in (None, serial):
            found.append(int(node.name.removeprefix("video")))
    if not found:
        raise PortResolutionError(
            f"devices.camera.port: no V4L2 camera with usb {vid:04x}:{pid:04x} attached"
        )
    return f"/dev/video{min(found)}"
