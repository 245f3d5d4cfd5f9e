"""The foot pedal plugged into the console (`devices.pedal.port = { console = "surgeon" }`): the
console reads it (here the simulator's pedal, through pyusb on the simulated bus) and forwards
it; held, the saline flows; let go, or the console gone, it stops."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from drivers.clock import REAL_CLOCK
from drivers.transport.mqtt import MqttEndpoint
from drivers.transport.usb_remote import BUS_SOCKET_NAME
from rig.api.roles import Role
from rig.config import DEFAULT_PROFILE, load_profile
from rig.console.pedal import PedalForwarder
from rig.console.server import ConsoleServer, new_token
from rig.devices.pedal import foot_pedal
from rig.devices.usb_port import sim_bus_port
from tests.system.harness import running_rig

pytestmark = [pytest.mark.system, pytest.mark.timeout(120)]


def _profile_with_the_pedal_at_the_console(tmp_path: Path) -> Path:
    text = DEFAULT_PROFILE.read_text()
    at_rig = 'port = { sim = "pedal" }'
    assert at_rig in text
    path = tmp_path / "console-pedal.toml"
    path.write_text(text.replace(at_rig, 'port = { console = "surgeon" }'))
    return path


async def test_the_consoles_pedal_irrigates_while_held_and_its_silence_stops_the_saline(
    tmp_path: Path,
) -> None:
    profile_path = _profile_with_the_pedal_at_the_console(tmp_path)
    section = load_profile(profile_path).devices.pedal
    assert section is not None
    async with running_rig(tmp_path / "run", profile_path=profile_path) as rig:
        await rig.wait_ready()
        await rig.prime()
        server = ConsoleServer(rig.rig.profile.rig_id, Role.SURGEON, token=new_token())
        username, password = rig.rig.credentials_of(Role.SURGEON)
        async with MqttEndpoint(
            rig.rig.broker_host, rig.rig.broker_port, username=username, password=password
        ) as mqtt:
            bridge = asyncio.create_task(server.bridge(mqtt))
            pedal = foot_pedal(section, sim_bus_port(rig.rig.link_dir, BUS_SOCKET_NAME), REAL_CLOCK)
            forwarder = PedalForwarder(pedal, server.command, section.forward_timeout_ms / 1000.0)
            forwarding = asyncio.create_task(forwarder.run())
            try:
                await rig.wait_until(lambda s: bool(s["devices"]["pedal"]), 5.0)
                await rig.sim("pedal", action="press", pedal="left")
                await rig.wait_sim(lambda s: s["pump"]["running"], 3.0)
                await rig.sim("pedal", action="release", pedal="left")
                await rig.wait_sim(lambda s: not s["pump"]["running"], 1.0)
                # Held again, then the console stops forwarding (it hung, its network went).
                await rig.sim("pedal", action="press", pedal="left")
                await rig.wait_sim(lambda s: s["pump"]["running"], 3.0)
                # Held and unchanged, the pedal is still reported: the heartbeat.
                held_reports = forwarder.reports
                for _ in range(section.forward_timeout_ms * 2 // 10):  # two timeouts
                    if forwarder.reports >= held_reports + 2:
                        break
                    await asyncio.sleep(0.01)
                assert forwarder.reports >= held_reports + 2, forwarder.reports - held_reports
                forwarding.cancel()
                silent_at = asyncio.get_running_loop().time()
                await rig.wait_sim(lambda s: not s["pump"]["running"], 2.0)
                assert asyncio.get_running_loop().time() - silent_at < 1.5
            finally:
                for task in (forwarding, bridge):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await pedal.close()
