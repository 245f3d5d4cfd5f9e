"""A dropped cable, a silent device, a corrupt line, an e-stop press: detected, reported, survived."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from tests.hazard_plugin import HazardEvidence
from tests.system.harness import RigUnderTest

pytestmark = [pytest.mark.system, pytest.mark.timeout(60)]


@pytest.mark.hazard("H10")
async def test_pump_cable_pulled_while_irrigating_latches_and_cuts_pump_power(
    rig: RigUnderTest, hazard_evidence: HazardEvidence
) -> None:
    await rig.irrigate_steadily(1.0, settle_s=0.3)
    pulled_at = time.monotonic()
    await rig.sim("unplug", device="pump")
    stop = await rig.next_event(lambda e: e.get("kind") == "stop", timeout_s=3.0)
    assert stop["cause"] in {"pump_link_lost", "pump_alarm"}
    assert stop["latched"]
    # The stop could not be written to the pump: the interlock cut its power instead.
    state = await rig.wait_sim(lambda s: not s["pump"]["running"], 1.0)
    assert not state["board"]["relay_closed"] and state["pump"]["last_stop_reason"] == "power"
    stopped_ms = (state["pump"]["stopped_at_s"] - pulled_at) * 1000
    print(f"pump cable pulled: pump power cut {stopped_ms:.1f} ms after the pull")
    hazard_evidence.detection_ms(stopped_ms)
    # Plugged back, the pump stays unpowered: its relay opens only with the operator's reset.
    await rig.sim("replug", device="pump")
    await asyncio.sleep(1.0)
    status = await rig.status()
    assert status["mode"] == "fault" and not (await rig.sim("state"))["pump"]["powered"]
    assert (await rig.command({"op": "fault.reset"}))["ok"]
    # Then the pump powers up, the daemon reconnects by itself, and nothing runs.
    status = await rig.wait_until(lambda s: s["devices"]["pump"], 10.0)
    assert status["mode"] == "stopped"
    assert not (await rig.sim("state"))["pump"]["running"]


@pytest.mark.hazard("H11")
async def test_board_cable_pulled_while_irrigating_stops_the_pump(
    rig: RigUnderTest, hazard_evidence: HazardEvidence
) -> None:
    await rig.irrigate_steadily(1.0, settle_s=0.3)
    pulled_at = time.monotonic()
    await rig.sim("unplug", device="board")
    stop = await rig.next_event(lambda e: e.get("kind") == "stop", timeout_s=3.0)
    assert stop["cause"] in {"board_link_lost", "pressure_data_stale"}
    state = await rig.wait_sim(lambda s: not s["pump"]["running"], 1.0)
    assert state["pump"]["last_stop_reason"] in {"command", "power"}
    stopped_ms = (state["pump"]["stopped_at_s"] - pulled_at) * 1000
    print(f"board cable pulled: pump stopped {stopped_ms:.1f} ms after the pull ({stop['cause']})")
    hazard_evidence.detection_ms(stopped_ms)
    await rig.sim("replug", device="board")
    await rig.wait_until(lambda s: s["devices"]["board"], 10.0)


@pytest.mark.hazard("H11")
async def test_silent_board_is_detected_as_stale_pressure_data(rig: RigUnderTest) -> None:
    await rig.irrigate_steadily(1.0, settle_s=0.3)
    await rig.sim("link_fault", device="board", silent=True)
    stop = await rig.next_event(lambda e: e.get("kind") == "stop", timeout_s=3.0)
    assert stop["cause"] == "pressure_data_stale"
    assert (await rig.wait_sim(lambda s: not s["pump"]["running"], 1.0))["pump"][
        "last_stop_reason"
    ] == "command"


async def test_a_few_corrupted_board_bytes_are_counted_and_survived(rig: RigUnderTest) -> None:
    # 0.05 % of bytes: about one 14-byte sample frame in 140 is lost, well under the 2 % limit.
    await rig.sim("link_fault", device="board", corrupt_probability=0.0005)
    await rig.irrigate_steadily(1.0, settle_s=3.0)
    status = await rig.status()
    assert status["mode"] == "irrigating", status.get("fault")
    telemetry = await rig.mqtt.subscribe(rig.topics.fluid_telemetry)
    links = json.loads((await telemetry.get()).payload)["links"]["board"]
    assert links["crc_errors"] + links["invalid_bytes"] > 0


@pytest.mark.hazard("H11")
async def test_a_failing_board_cable_stops_the_pump_on_sample_loss(rig: RigUnderTest) -> None:
    await rig.irrigate_steadily(1.0, settle_s=0.3)
    # 0.5 % of bytes: about 7 % of sample frames lost, the rig half-blind.
    await rig.sim("link_fault", device="board", corrupt_probability=0.005)
    stop = await rig.next_event(lambda e: e.get("kind") == "stop", timeout_s=5.0)
    assert stop["cause"] == "plausibility" and stop["figures"]["check"] == "sample_gap"
    assert (await rig.wait_sim(lambda s: not s["pump"]["running"], 1.0))["pump"][
        "last_stop_reason"
    ] == "command"


@pytest.mark.hazard("H16")
async def test_estop_on_the_board_stops_everything_and_latches(rig: RigUnderTest) -> None:
    await rig.irrigate_steadily(1.0, settle_s=0.3)
    await rig.sim("estop", pressed=True)
    stop = await rig.next_event(lambda e: e.get("kind") == "stop", timeout_s=2.0)
    assert stop["cause"] == "estop" and "e-stop button" in stop["message"]
    state = await rig.wait_sim(lambda s: not s["pump"]["running"], 1.0)
    assert not state["board"]["relay_closed"]
    # Reset is refused while the button is held, and allowed once it is released.
    await rig.sim("estop", pressed=False)
    await asyncio.sleep(0.1)
    reply = await rig.command({"op": "fault.reset"})
    assert reply["ok"], reply
    state = await rig.wait_sim(lambda s: s["board"]["relay_closed"], 2.0)
    assert not state["pump"]["running"]
