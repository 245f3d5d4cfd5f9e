"""Unauthorised commands (H21): the broker holds every user to its role, the daemon to its ops.

Real Mosquitto with per-user passwords and an ACL (rig.api.roles.broker_acl), as `rig sim`
starts it.
"""

from __future__ import annotations

import asyncio
import json

import aiomqtt
import pytest

from drivers.transport.mqtt import BrokerRefusedError, MqttEndpoint
from rig.api.roles import Role
from tests.system.harness import RigUnderTest

pytestmark = [pytest.mark.system, pytest.mark.timeout(60), pytest.mark.hazard("H21")]


async def test_anonymous_and_wrong_password_clients_are_refused(rig: RigUnderTest) -> None:
    for username, password in ((None, None), (Role.ENGINEER.value, "not-the-password")):
        with pytest.raises(aiomqtt.MqttError):
            async with MqttEndpoint(
                rig.rig.broker_host, rig.rig.broker_port, username=username, password=password
            ):
                pass


async def test_an_observer_sees_everything_and_commands_nothing(rig: RigUnderTest) -> None:
    await rig.prime()
    async with rig.endpoint(Role.OBSERVER) as observer:
        state = await observer.subscribe(rig.topics.state)
        assert json.loads((await state.get()).payload)["online"] is True
        # Not on its own topic, nor on a surgeon's or an engineer's: the broker refuses them all
        # (PUBACK 0x87), and the client says so rather than wait for an answer.
        for role in Role:
            with pytest.raises(BrokerRefusedError, match="Not authorized"):
                await observer.request(
                    rig.topics.commands_for(role),
                    {"op": "fluid.irrigate", "flow_ml_min": 1.0},
                    timeout_s=0.5,
                )
    await asyncio.sleep(0.2)
    sim = await rig.sim("state")
    assert not sim["pump"]["running"] and (await rig.status())["mode"] == "stopped"


async def test_a_surgeon_cannot_publish_as_an_engineer(rig: RigUnderTest) -> None:
    async with rig.endpoint(Role.SURGEON) as surgeon:
        with pytest.raises(BrokerRefusedError, match="Not authorized"):
            await surgeon.request(
                rig.topics.commands_for(Role.ENGINEER), {"op": "selftest.run"}, timeout_s=0.5
            )


async def test_the_daemon_refuses_ops_outside_a_role_and_records_it(rig: RigUnderTest) -> None:
    await rig.prime()
    async with rig.endpoint(Role.SURGEON) as surgeon:
        topic = rig.topics.commands_for(Role.SURGEON)
        denied = await surgeon.request(topic, {"op": "selftest.run"})
        assert not denied["ok"] and denied["error"]["code"] == "denied"
        assert "surgeon role may not" in denied["error"]["message"]
        event = await rig.next_event(lambda e: e.get("kind") == "command_denied")
        assert event["role"] == "surgeon" and event["op"] == "selftest.run"
        # What a surgeon may do, a surgeon can do.
        assert (await surgeon.request(topic, {"op": "fluid.irrigate", "flow_ml_min": 1.0}))["ok"]
        await rig.wait_sim(lambda s: s["pump"]["running"], 3.0)
        assert (await surgeon.request(topic, {"op": "estop", "source": "surgeon pedal"}))["ok"]
    await rig.wait_sim(lambda s: not s["pump"]["running"], 1.0)


async def test_the_console_in_control_holds_the_fluid_until_an_engineer_takes_over(
    rig: RigUnderTest,
) -> None:
    """The surgeon's station takes control: the bench's command line can then stop the fluid
    but not move it, until it takes control over explicitly, which is recorded."""
    await rig.prime()
    irrigate = {"op": "fluid.irrigate", "flow_ml_min": 1.0}
    async with rig.endpoint(Role.SURGEON) as surgeon, rig.endpoint(Role.ENGINEER) as engineer:
        console = rig.topics.commands_for(Role.SURGEON)
        bench = rig.topics.commands_for(Role.ENGINEER)
        taken = await surgeon.request(console, {"op": "control.take"})
        assert taken["ok"] and taken["result"]["control"]["holder"] == "surgeon"
        event = await rig.next_event(lambda e: e.get("kind") == "control_changed")
        assert (event["previous"], event["holder"], event["forced"]) == (None, "surgeon", False)
        assert (await rig.status())["control"]["holder"] == "surgeon"

        refused = await engineer.request(bench, irrigate)
        assert not refused["ok"] and refused["error"]["code"] == "not_in_control"
        assert "surgeon station has control" in refused["error"]["message"]
        refused = await engineer.request(bench, {"op": "control.take"})
        assert not refused["ok"] and refused["error"]["code"] == "not_in_control"
        await asyncio.sleep(0.3)
        assert not (await rig.sim("state"))["pump"]["running"]

        assert (await surgeon.request(console, irrigate))["ok"]
        await rig.wait_sim(lambda s: s["pump"]["running"], 3.0)
        # A stop is never refused, whoever has control.
        assert (await engineer.request(bench, {"op": "fluid.stop"}))["ok"]
        await rig.wait_sim(lambda s: not s["pump"]["running"], 1.0)

        rig.drain_events()
        forced = await engineer.request(bench, {"op": "control.take", "force": True})
        assert forced["ok"] and forced["result"]["control"]["holder"] == "engineer"
        event = await rig.next_event(lambda e: e.get("kind") == "control_changed")
        assert (event["previous"], event["holder"], event["forced"]) == (
            "surgeon",
            "engineer",
            True,
        )
        assert (await engineer.request(bench, irrigate))["ok"]
        refused = await surgeon.request(console, irrigate)
        assert not refused["ok"] and refused["error"]["code"] == "not_in_control"
        assert (await surgeon.request(console, {"op": "estop", "source": "surgeon"}))["ok"]
    await rig.wait_sim(lambda s: not s["pump"]["running"], 1.0)
