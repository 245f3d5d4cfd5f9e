from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drivers.transport.mqtt import MqttEndpoint
from rig.api.roles import Role
from rig.config import DEFAULT_PROFILE, load_profile
from rig.launcher import start_sim_rig
from tests.system.harness import RigUnderTest


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[RigUnderTest]:
    profile = load_profile(DEFAULT_PROFILE)
    sim_rig = await start_sim_rig(DEFAULT_PROFILE, profile, run_dir=tmp_path)
    try:
        username, password = sim_rig.credentials_of(Role.ENGINEER)
        async with MqttEndpoint(
            sim_rig.broker_host, sim_rig.broker_port, username=username, password=password
        ) as mqtt:
            under_test = RigUnderTest(sim_rig, mqtt)
            await under_test.start()
            await under_test.wait_ready()
            yield under_test
    finally:
        await sim_rig.stop()
        for log_name in ("daemon.log", "sim.log"):
            log_path = tmp_path / log_name
            if log_path.exists():
                print(f"--- {log_name} (tail) ---\n{log_path.read_text()[-3000:]}")
