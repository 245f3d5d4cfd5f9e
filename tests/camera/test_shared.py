"""The frame hand-over between the camera process and the daemon, through shared memory."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rig.camera.shared import SLOTS, SharedFrames
from rig.devices.camera_config import CameraDeviceConfig


def test_a_frame_written_in_another_process_is_read_whole_with_its_stamp() -> None:
    frames = SharedFrames.create(64, 48)
    try:
        assert frames.latest() is None and frames.latest_info() is None
        writer = textwrap.dedent(
            f"""
            from rig.camera.shared import SharedFrames
            frames = SharedFrames.attach({frames.name!r}, 64, 48)
            for value in (10, 20, 30, 40):
                slot = frames.begin()
                slot[:] = value  # decoded in place: the slot is the shared memory itself
                frames.commit(1000 + value)
            frames.count_dropped(2)
            frames.close()
            """
        )
        subprocess.run([sys.executable, "-c", writer], check=True, timeout=30)
        got = frames.latest()
        assert got is not None
        info, frame = got
        assert (info.number, info.t_ns) == (4, 1040)
        assert frame.shape == (48, 64, 3) and np.all(frame == 40)
        assert frames.dropped == 2
        # The reader's copy is its own: the writer's next frame does not change it.
        frames.begin()[:] = 99
        frames.commit(2000)
        assert np.all(frame == 40)
    finally:
        frames.close()
        frames.unlink()


def test_a_slot_being_written_is_never_read_as_a_frame() -> None:
    frames = SharedFrames.create(8, 8)
    try:
        for value in range(SLOTS):
            frames.begin()[:] = value
            frames.commit(value)
        latest = frames.latest()
        assert latest is not None and latest[0].number == SLOTS
        # A frame being decoded is not published until it is committed.
        slot = frames.begin()
        slot[:] = 7
        assert frames.latest() is not None  # still the previous complete frame
        frames.abort()
        got = frames.latest()
        assert got is not None and got[0].number == SLOTS and np.all(got[1] == SLOTS - 1)
    finally:
        frames.close()
        frames.unlink()


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"width": 4000}, "devices.camera.width"),
        ({"fps": 2.0}, "devices.camera.fps"),
        ({"fps": 10.0, "video_timeout_ms": 200}, "devices.camera.video_timeout_ms"),
        ({"video_loss_stop_ms": 5000}, "devices.camera.video_loss_stop_ms"),
        ({"video_timeout_ms": 800, "video_loss_stop_ms": 600}, "devices.camera.video_loss_stop_ms"),
        ({"port": {"console": "surgeon"}}, "devices.camera.port"),
    ],
)
def test_camera_settings_out_of_bounds_are_refused_naming_the_field(
    fields: dict[str, object], path: str
) -> None:
    with pytest.raises(ValueError, match=path.rpartition(".")[2]):
        CameraDeviceConfig.model_validate({"port": {"sim": "camera"}, **fields})
