"""Malformed and out-of-range commands get error replies and never move the pump."""

from __future__ import annotations

import asyncio

import pytest

from tests.system.harness import RigUnderTest

pytestmark = [pytest.mark.system, pytest.mark.timeout(60)]

BAD_COMMANDS: list[tuple[bytes, str]] = [
    (b"not json at all", "invalid"),
    (b"[]", "invalid"),
    (b"{}", "invalid"),
    (b'{"op": "fluid.flood"}', "invalid"),
    (b'{"op": "fluid.irrigate"}', "invalid"),
    (b'{"op": "fluid.irrigate", "flow_ml_min": "fast"}', "invalid"),
    (b'{"op": "fluid.irrigate", "flow_ml_min": NaN}', "invalid"),
    (b'{"op": "fluid.irrigate", "flow_ml_min": Infinity}', "invalid"),
    (b'{"op": "fluid.irrigate", "flow_ml_min": -1.0}', "invalid"),
    (b'{"op": "fluid.irrigate", "flow_ml_min": 1.0, "force": true}', "invalid"),
    (b'{"op": "fluid.irrigate", "flow_ml_min": 100.0}', "out_of_range"),
    (b'{"op": "fluid.irrigate", "flow_ml_min": 1e-9}', "out_of_range"),
    (b'{"op": "fluid.hold_pressure", "pressure_mmhg": 400}', "out_of_range"),
    (b'{"op": "fluid.bolus", "volume_ml": 50, "rate_ml_min": 0.2}', "out_of_range"),
    (b'{"op": "fluid.bolus", "volume_ml": 0.5, "rate_ml_min": 30}', "out_of_range"),
    (b"\xff\xfe\x00garbage", "invalid"),
]


@pytest.mark.hazard("H05", "H20")
async def test_bad_commands_get_errors_and_never_move_the_pump(rig: RigUnderTest) -> None:
    for payload, code in BAD_COMMANDS:
        reply = await rig.command(payload)
        assert reply["ok"] is False, payload
        assert reply["error"]["code"] == code, (payload, reply)
        assert reply["error"]["message"], payload
    await asyncio.sleep(0.3)
    state = await rig.sim("state")
    assert not state["pump"]["running"]
    assert state["pump"]["infused_ml"] == 0.0
    assert state["world"]["pumped_ml"] == 0.0
    status = await rig.status()
    assert status["online"] and status["mode"] == "stopped"


async def test_error_message_names_field_value_and_expectation(rig: RigUnderTest) -> None:
    reply = await rig.command({"op": "fluid.irrigate", "flow_ml_min": 100.0})
    message = reply["error"]["message"]
    assert "flow_ml_min" in message and "100" in message and "mL/min" in message


async def test_request_without_response_topic_is_survived(rig: RigUnderTest) -> None:
    await rig.mqtt.publish(rig.commands, b'{"op": "fluid.irrigate", "flow_ml_min": 1.0')
    await rig.mqtt.publish(rig.commands, {"op": "fluid.irrigate", "flow_ml_min": 99})
    await asyncio.sleep(0.2)
    assert (await rig.status())["online"]
    assert not (await rig.sim("state"))["pump"]["running"]


async def test_a_bolus_while_pressure_is_held_is_a_state_conflict_not_out_of_range(
    rig: RigUnderTest,
) -> None:
    """In range but not now: the code says so (the README's sequence once ran into this)."""
    await rig.prime()
    reply = await rig.command({"op": "fluid.hold_pressure", "pressure_mmhg": 25.0})
    assert reply["ok"], reply
    reply = await rig.command({"op": "fluid.bolus", "volume_ml": 0.1, "rate_ml_min": 0.5})
    assert reply["ok"] is False
    assert reply["error"]["code"] == "state_conflict", reply
    assert "stop first" in reply["error"]["message"]
    assert (await rig.status())["mode"] == "hold_pressure"
