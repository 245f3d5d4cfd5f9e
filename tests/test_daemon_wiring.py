"""The daemon's wiring between drivers and the fluid loop, without devices or a broker."""

from __future__ import annotations

import tomllib

from drivers.ioboard import PressureSample
from rig.camera.stream import VideoBroker
from rig.config import DEFAULT_PROFILE, RigProfile, load_profile, validate_profile
from rig.daemon import BrokerAddress, RigDaemon
from rig.devices.board import BoardDevice
from rig.devices.camera import CameraDevice
from tests.support.ports import unused_ports

WRAP_US = 2**32


async def test_samples_reach_the_controller_on_the_extended_board_clock() -> None:
    """The board's raw 32-bit microseconds wrap every 71.6 min; the loop must never see it."""
    profile = load_profile(DEFAULT_PROFILE)
    daemon = RigDaemon(profile, unused_ports(profile), BrokerAddress("127.0.0.1", 1))
    board = daemon.devices.one(BoardDevice)
    for counter, raw_us in enumerate((WRAP_US - 2000, 0, 2000), start=1):
        full_us = raw_us if raw_us >= WRAP_US - 2000 else WRAP_US + raw_us
        board._on_sample(
            PressureSample(
                raw_us, counter, 17.0, board_time_s=full_us / 1e6, rx_time_s=full_us / 1e6
            )
        )
        assert daemon.controller.last_sample_t_us == full_us


def _camera_profile() -> RigProfile:
    with DEFAULT_PROFILE.open("rb") as f:
        data = tomllib.load(f)
    data["devices"]["camera"] = {"port": {"sim": "camera"}}
    return validate_profile(data)


def _video_broker(daemon: RigDaemon) -> VideoBroker | None:
    return daemon.devices.one(CameraDevice).link.video_broker


def test_the_camera_process_logs_in_as_itself_never_as_the_daemon() -> None:
    profile = _camera_profile()
    broker = BrokerAddress("127.0.0.1", 1, "rigd", "daemon-secret")
    daemon = RigDaemon(
        profile, unused_ports(profile), broker, camera_login=("rigcam", "camera-secret")
    )
    video = _video_broker(daemon)
    assert video is not None and (video.username, video.password) == ("rigcam", "camera-secret")
    assert (video.host, video.port, video.rig_id) == ("127.0.0.1", 1, profile.rig_id)
    # Without a login of its own on a broker with logins, it sends no video at all.
    daemon = RigDaemon(profile, unused_ports(profile), broker)
    assert _video_broker(daemon) is None
    # An open broker (no logins): it connects as no one, as the daemon does.
    daemon = RigDaemon(profile, unused_ports(profile), BrokerAddress("127.0.0.1", 1))
    video = _video_broker(daemon)
    assert video is not None and video.username is None and video.password is None
