"""A foot pedal plugged into the surgeon's console (`devices.pedal.port = { console = "surgeon"
}`): `rig sim`'s processes, the console's reports sent over MQTT as the surgeon, the emulated
pump's motor as ground truth. A lost stream counts as released."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drivers.transport.mqtt import JsonObject, MqttEndpoint
from rig.api.roles import Role
from rig.config import DEFAULT_PROFILE
from tests.system.harness import RigUnderTest, running_rig

pytestmark = [pytest.mark.system, pytest.mark.timeout(120)]

HEARTBEAT_S = 0.05


def _profile_with_the_pedal_at_the_console(tmp_path: Path) -> Path:
    text = DEFAULT_PROFILE.read_text()
    at_rig = 'port = { sim = "pedal" }'
    assert at_rig in text
    path = tmp_path / "console-pedal.toml"
    path.write_text(text.replace(at_rig, 'port = { console = "surgeon" }'))
    return path


class Console:
    """The surgeon's console forwarding its pedal: every change at once, and a heartbeat."""

    def __init__(self, mqtt: MqttEndpoint, rig: RigUnderTest) -> None:
        self.mqtt = mqtt
        self.topic = rig.topics.commands_for(Role.SURGEON)
        self.pressed: list[str] = []
        self.seq = itertools.count(1)
        self.replies: list[JsonObject] = []

    async def report(self) -> JsonObject:
        reply = await self.mqtt.request(
            self.topic, {"op": "pedal.report", "pressed": self.pressed, "seq": next(self.seq)}
        )
        self.replies.append(reply)
        return reply

    async def heartbeat(self) -> None:
        while True:
            await self.report()
            await asyncio.sleep(HEARTBEAT_S)


@contextlib.asynccontextmanager
async def _console(rig: RigUnderTest) -> AsyncIterator[tuple[Console, asyncio.Task[None]]]:
    async with rig.endpoint(Role.SURGEON) as mqtt:
        console = Console(mqtt, rig)
        beating = asyncio.create_task(console.heartbeat())
        try:
            yield console, beating
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating


async def test_a_console_pedal_irrigates_while_held_and_a_silent_stream_counts_as_released(
    tmp_path: Path,
) -> None:
    profile = _profile_with_the_pedal_at_the_console(tmp_path)
    async with running_rig(tmp_path / "run", profile_path=profile) as rig:
        await rig.wait_ready()
        await rig.prime()
        async with _console(rig) as (console, beating):
            console.pressed = ["left"]
            await console.report()
            await rig.wait_sim(lambda s: s["pump"]["running"], 3.0)
            console.pressed = []
            await console.report()
            await rig.wait_sim(lambda s: not s["pump"]["running"], 1.0)
            # Held again, then the console goes silent (its process hangs, the network drops).
            console.pressed = ["left"]
            await console.report()
            await rig.wait_sim(lambda s: s["pump"]["running"], 3.0)
            beating.cancel()
            silent_at = asyncio.get_running_loop().time()
            await rig.wait_sim(lambda s: not s["pump"]["running"], 2.0)
            # forward_timeout_ms (300 ms) after the last report, plus the stop on the wire
            assert asyncio.get_running_loop().time() - silent_at < 1.5
            assert all(reply["ok"] for reply in console.replies), console.replies
        status = await rig.status()
        assert status["devices"]["pedal"] is False  # the stream is gone


async def test_only_the_station_the_pedal_is_plugged_into_may_forward_it(tmp_path: Path) -> None:
    profile = _profile_with_the_pedal_at_the_console(tmp_path)
    async with running_rig(tmp_path / "run", profile_path=profile) as rig:
        await rig.wait_ready()
        reply = await rig.command({"op": "pedal.report", "pressed": ["left"], "seq": 1})
        assert not reply["ok"] and reply["error"]["code"] == "denied", reply
        assert "surgeon console" in reply["error"]["message"]
        async with rig.endpoint(Role.SURGEON) as mqtt:
            topic = rig.topics.commands_for(Role.SURGEON)
            first = await mqtt.request(topic, {"op": "pedal.report", "pressed": [], "seq": 7})
            assert first["ok"] and first["result"]["accepted"], first
            # a duplicate (MQTT at least once) or a late report is dropped, not replayed
            again = await mqtt.request(topic, {"op": "pedal.report", "pressed": ["left"], "seq": 7})
            assert again["ok"] and not again["result"]["accepted"], again
            bad = await mqtt.request(topic, {"op": "pedal.report", "pressed": ["toe"], "seq": 8})
            assert not bad["ok"], bad
        assert not (await rig.sim("state"))["pump"]["running"]
