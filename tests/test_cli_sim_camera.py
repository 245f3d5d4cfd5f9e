"""`rig sim --camera` (what `./run sim` runs): the simulator's camera added to the profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from rig.cli.run_cmds import with_sim_camera
from rig.config import DEFAULT_PROFILE, load_profile
from rig.devices.camera_config import CameraDeviceConfig


def test_a_profile_without_a_camera_gets_the_simulators_at_its_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RIG_RUNTIME_DIR", str(tmp_path))
    assert load_profile(DEFAULT_PROFILE).devices.camera is None
    derived = with_sim_camera(DEFAULT_PROFILE)
    assert derived.parent == tmp_path
    profile = load_profile(derived)
    camera = profile.devices.camera
    assert (
        camera is not None
        and camera.model_dump()
        == CameraDeviceConfig.model_validate({"port": {"sim": "camera"}}).model_dump()
    )
    # Everything else as the profile said.
    assert profile.model_copy(
        update={"devices": profile.devices.model_copy(update={"camera": None})}
    ) == load_profile(DEFAULT_PROFILE)
    assert with_sim_camera(derived) == derived  # a camera already: the profile as it is
