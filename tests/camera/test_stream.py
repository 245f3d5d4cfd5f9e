"""The view's messages to the consoles (rig/camera/stream.py): framing, size bound, and the
daemon's broker password kept off the camera process's command line."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from rig.camera.stream import (
    MAX_FRAME_BYTES,
    PASSWORD_ENV,
    VideoBroker,
    encode_view,
    pack_frame,
    unpack_frame,
)
from rig.devices.camera import shown_source


def test_a_frame_reads_back_with_its_header() -> None:
    header = {"n": 7, "t_ns": 123, "wall_ms": 1.5, "timeout_ms": 400}
    assert unpack_frame(pack_frame(header, b"\xff\xd8jpeg")) == (header, b"\xff\xd8jpeg")
    with pytest.raises(ValueError, match="expected a header"):
        unpack_frame(b"\x00")


def test_a_view_too_large_for_the_broker_is_sent_smaller() -> None:
    noise = np.random.default_rng(1).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    jpeg = encode_view(noise)  # the raw 1080p view before calibration, at its worst
    assert len(jpeg) <= MAX_FRAME_BYTES
    picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None and picture.shape[1] < 1920
    small = np.full((223, 223, 3), 128, np.uint8)
    decoded = cv2.imdecode(np.frombuffer(encode_view(small), np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None and decoded.shape == (223, 223, 3)


def test_the_password_goes_in_the_environment_not_the_argument(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker = VideoBroker("10.0.0.2", 8883, "rig-7", "rigcam", "/etc/ca.pem", password="s3cret")
    argument = broker.as_argument()
    assert "s3cret" not in argument and "s3cret" not in repr(broker)
    monkeypatch.setenv(PASSWORD_ENV, broker.environment()[PASSWORD_ENV])
    assert VideoBroker.from_argument(argument) == broker


def test_the_state_names_the_camera_without_its_login_or_path() -> None:
    assert shown_source("rtsp://admin:pw@10.1.2.3:554/live?token=x") == "rtsp://10.1.2.3:554"
    assert shown_source("http://127.0.0.1:4242/stream.mjpg") == "http://127.0.0.1:4242"
    assert shown_source("/dev/video0") == "/dev/video0"
