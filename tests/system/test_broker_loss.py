"""Losing the operators' channel (issue 6, part 2): the broker killed and restarted mid-irrigation.

Expected (docs/api.md, "Losing the broker"): the fluid stops at once with a latched `api_lost`
fault, the daemon and its device tasks stay up, it reconnects with back-off, and once the broker
is back it publishes its state, the fault and the events since the loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import pytest

from drivers.transport.mqtt import JsonObject, MqttEndpoint
from rig.api.roles import Role
from tests.hazard_plugin import HazardEvidence
from tests.system.harness import RigUnderTest

pytestmark = [pytest.mark.system, pytest.mark.timeout(120), pytest.mark.hazard("H23")]

BROKER_DOWN_S = 2.0


async def test_broker_killed_mid_irrigation_stops_fluid_latches_api_lost_and_reconnects(
    rig: RigUnderTest, hazard_evidence: HazardEvidence
) -> None:
    broker = rig.rig.broker
    assert broker is not None and rig.rig.daemon is not None
    await rig.irrigate_steadily(1.0, settle_s=0.5)
    killed_at = time.monotonic()
    await broker.stop()
    await asyncio.sleep(BROKER_DOWN_S)
    assert rig.rig.daemon.returncode is None, "the daemon died with its broker"
    await broker.start()
    username, password = rig.rig.credentials_of(Role.ENGINEER)
    async with MqttEndpoint(
        broker.host, broker.port, username=username, password=password
    ) as engineer:
        events = await engineer.subscribe(rig.topics.events)
        story: list[JsonObject] = []
        async with asyncio.timeout(15):
            while not story or story[-1]["kind"] != "api_restored":
                story.append(json.loads((await events.get()).payload))
        back = RigUnderTest(rig.rig, engineer)
        sim = await back.sim("state")
        state = await back.status()
        kinds = [event["kind"] for event in story]
        assert "api_lost" in kinds, kinds
        stops = [event for event in story if event["kind"] == "stop"]
        assert [stop["cause"] for stop in stops] == ["api_lost"], story
        assert stops[0]["latched"] is True
        # The fluid stopped at once, by the daemon, not by a device's timeout.
        assert not sim["pump"]["running"], sim
        stopped_after_s = sim["pump"]["stopped_at_s"] - killed_at
        print(f"broker killed: pump stopped {stopped_after_s * 1000:.0f} ms later")
        hazard_evidence.detection_ms(stopped_after_s * 1000)
        assert stopped_after_s < 0.5
        assert sim["pump"]["last_stop_reason"] == "command", sim
        assert state["online"] and state["state"] == "fault", state
        assert state["fault"]["cause"] == "api_lost"
        # The devices stayed with the daemon throughout; after a reset the rig works again.
        assert state["devices"] == {"pump": True, "board": True, "pedal": True, "basket": True}
        assert (await back.command({"op": "fault.reset"}))["ok"]
        assert (await back.command({"op": "fluid.irrigate", "flow_ml_min": 1.0}))["ok"]
        await back.wait_sim(lambda s: s["pump"]["running"], 3.0)
        assert (await back.command({"op": "fluid.stop"}))["ok"]


async def test_broker_lost_while_idle_reconnects_without_a_fault(rig: RigUnderTest) -> None:
    """Nothing moved, so nothing needs stopping: the loss is recorded, not latched."""
    broker = rig.rig.broker
    assert broker is not None
    await broker.stop()
    await asyncio.sleep(1.0)
    await broker.start()
    username, password = rig.rig.credentials_of(Role.OBSERVER)
    async with MqttEndpoint(
        broker.host, broker.port, username=username, password=password
    ) as observer:
        states = await observer.subscribe(rig.topics.state)
        async with asyncio.timeout(15):
            while True:
                state = json.loads((await states.get()).payload)
                if state.get("online"):
                    break
    assert state["state"] == "ready" and state["fault"] is None
    assert rig.rig.daemon is not None and rig.rig.daemon.returncode is None


async def test_a_self_test_begun_finishes_when_the_broker_goes_away(rig: RigUnderTest) -> None:
    """A command once begun runs to its end: cancelled with its connection, a self-test would
    leave the rig stuck in `self_test`."""
    broker = rig.rig.broker
    assert broker is not None
    request = asyncio.create_task(rig.command({"op": "selftest.run"}, timeout_s=30.0))
    await rig.wait_until(lambda s: s["state"] == "self_test", 5.0)
    await broker.stop()
    with contextlib.suppress(Exception):
        await request
    await asyncio.sleep(1.0)
    await broker.start()
    username, password = rig.rig.credentials_of(Role.ENGINEER)
    async with MqttEndpoint(
        broker.host, broker.port, username=username, password=password
    ) as engineer:
        back = RigUnderTest(rig.rig, engineer)
        state = await back.wait_until(lambda s: s["state"] != "self_test", 30.0)
        assert state["state"] == "ready", state
        assert state["self_test"]["passed"] is True
