"""The safety layer on the running rig: self-test, rule table, client e-stop, loop-stall guard.

Real processes, a real broker, the real wire protocols; faults injected in the simulator.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drivers.realtime import LOOP_PRIORITY
from tests.hazard_plugin import HazardEvidence
from tests.system.harness import RigUnderTest, running_rig

pytestmark = [pytest.mark.system, pytest.mark.timeout(60)]


@pytest.mark.hazard("H08")
async def test_self_test_passes_at_start_with_every_device_side_safety_seen_to_act(
    rig: RigUnderTest, hazard_evidence: HazardEvidence
) -> None:
    status = await rig.status()
    assert status["state"] == "ready"
    checks = {check["name"]: check for check in status["self_test"]["checks"]}
    assert set(checks) == {
        "pump_reachable",
        "board_reachable",
        "pump_safe_mode_timeout",
        "board_watchdog",
        "pressure_zero",
        "rearm",
    }
    assert all(check["passed"] for check in checks.values())
    profile = rig.rig.profile
    watchdog_ms = profile.devices.board.watchdog_timeout_ms
    assert (
        watchdog_ms - profile.devices.board.heartbeat_period_ms
        <= checks["board_watchdog"]["measured_ms"]
    )
    assert checks["board_watchdog"]["measured_ms"] <= watchdog_ms + 150
    hazard_evidence.detection_ms(checks["board_watchdog"]["measured_ms"])
    assert (
        checks["pump_safe_mode_timeout"]["measured_ms"]
        >= profile.devices.pump.safe_mode_timeout_s * 1000
    )
    # The self-test left the rig armed: relay closed, no trips, pump idle.
    sim = await rig.sim("state")
    assert (
        sim["board"]["relay_closed"] and sim["board"]["trips"] == [] and not sim["pump"]["running"]
    )


@pytest.mark.hazard("H06")
async def test_irrigation_is_refused_until_the_line_is_primed(rig: RigUnderTest) -> None:
    reply = await rig.command({"op": "fluid.irrigate", "flow_ml_min": 1.0})
    assert not reply["ok"] and reply["error"]["code"] == "denied"
    assert "not primed" in reply["error"]["message"]
    denial = await rig.next_event(lambda e: e.get("kind") == "command_denied")
    assert denial["op"] == "fluid.irrigate" and "not primed" in denial["reason"]
    await rig.prime()
    assert (await rig.command({"op": "fluid.irrigate", "flow_ml_min": 1.0}))["ok"]


@pytest.mark.hazard("H16")
async def test_client_estop_stops_everything_latches_and_is_idempotent(
    rig: RigUnderTest, hazard_evidence: HazardEvidence
) -> None:
    await rig.irrigate_steadily(1.0, settle_s=0.3)
    pressed_at = time.monotonic()
    first = await rig.command({"op": "estop", "source": "test console"})
    second = await rig.command({"op": "estop", "source": "test console again"})
    assert first["ok"] and second["ok"] and first["result"]["state"] == "estop"
    assert first["result"]["stop"]["figures"] == {
        "pump_stop": "done",
        "pump_power_relay": "done",
        "basket_halt": "done",  # the simulator profile has a basket: the e-stop halts it (H16)
    }
    state = await rig.wait_sim(
        lambda s: not s["pump"]["running"] and not s["board"]["relay_closed"], 1.0
    )
    print(
        f"client e-stop: pump stopped {(state['pump']['stopped_at_s'] - pressed_at) * 1000:.1f} ms "
        "after the request was sent"
    )
    hazard_evidence.detection_ms((state["pump"]["stopped_at_s"] - pressed_at) * 1000)
    status = await rig.status()
    assert status["state"] == "estop" and status["fault"]["cause"] == "estop"
    assert "test console)" in status["fault"]["message"], "the first e-stop is the one kept"
    refused = await rig.command({"op": "fluid.prime"})
    assert not refused["ok"] and "estop" in refused["error"]["message"]
    assert (await rig.command({"op": "fault.reset"}))["ok"]
    await rig.wait_until(lambda s: s["state"] == "ready", 10.0)
    assert not (await rig.sim("state"))["pump"]["running"]


@pytest.mark.hazard("H09")
async def test_a_hung_event_loop_is_caught_by_the_guard_thread_and_the_board(
    rig: RigUnderTest, hazard_evidence: HazardEvidence
) -> None:
    await rig.irrigate_steadily(1.0, settle_s=0.3)
    limit_s = rig.rig.profile.fluid.loop_stall_timeout_ms / 1000.0
    watchdog_s = rig.rig.profile.devices.board.watchdog_timeout_ms / 1000.0
    sent_at = time.monotonic()
    reply = await rig.command({"op": "debug.hang", "seconds": 1.0}, timeout_s=5.0)
    assert reply["ok"], reply
    state = await rig.sim("state")
    stopped_after_s = state["pump"]["stopped_at_s"] - sent_at
    relay_after_s = state["board"]["relay_opened_at_s"] - sent_at
    print(
        f"loop stall: guard thread stopped the pump {stopped_after_s * 1000:.0f} ms, board watchdog "
        f"opened the relay {relay_after_s * 1000:.0f} ms after the hang began"
    )
    hazard_evidence.detection_ms(stopped_after_s * 1000)
    # The request needs a few ms to reach the daemon; the guard checks every 10 ms.
    assert limit_s <= stopped_after_s <= limit_s + 0.06
    assert state["pump"]["last_stop_reason"] == "command", (
        "stopped by the guard's STP, not by power"
    )
    assert watchdog_s - 0.06 <= relay_after_s <= watchdog_s + 0.06
    stop = await rig.next_event(
        lambda e: e.get("kind") == "stop" and e.get("cause") == "loop_stall"
    )
    assert stop["latched"] and stop["figures"]["stall_ms"] >= limit_s * 1000
    assert (await rig.status())["state"] == "fault"


@pytest.mark.hazard("H09")
async def test_the_daemons_loop_runs_real_time_with_its_watcher_above_it(
    rig: RigUnderTest,
) -> None:
    """drivers/realtime.py: where permitted (root, CAP_SYS_NICE, an RLIMIT_RTPRIO), the rig daemon's
    event loop is SCHED_FIFO, the loop-stall guard's thread one priority above it, and the
    threads that share its GIL one below."""
    how = (await rig.status())["loop_scheduling"]
    if not how.startswith("SCHED_FIFO"):
        pytest.skip(f"real-time scheduling is not permitted here: {how}")
    assert rig.rig.daemon is not None
    pid = rig.rig.daemon.pid
    threads = _scheduling_by_thread(pid)
    assert threads[pid] == (os.SCHED_FIFO, LOOP_PRIORITY), threads
    assert list(threads.values()).count((os.SCHED_FIFO, LOOP_PRIORITY + 1)) == 1, threads
    # its helpers one below: the journal's writer, and the executor's threads that claimed the
    # USB devices at connect (without the executor's initializer, the writer alone)
    assert list(threads.values()).count((os.SCHED_FIFO, LOOP_PRIORITY - 1)) >= 2, threads


def _scheduling_by_thread(pid: int) -> dict[int, tuple[int, int]]:
    """Each thread's (policy, real-time priority), from /proc."""
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rpartition(")")[2].split()
        threads[int(tid)] = (int(fields[38]), int(fields[37]))  # fields 41 and 40 of stat
    return threads


async def test_a_stall_at_rest_is_recorded_and_latches_nothing(rig: RigUnderTest) -> None:
    """A start-up under load once stalled the loop 196 ms with nothing moving and latched a
    fault the rig could never have needed (H24). Past the guard's limit (100 ms), short of the
    board's watchdog (250 ms: that one cuts the pump's power, and its trip latches)."""
    guard_s = rig.rig.profile.fluid.loop_stall_timeout_ms / 1000.0
    watchdog_s = rig.rig.profile.devices.board.watchdog_timeout_ms / 1000.0
    hang_s = (guard_s + watchdog_s) / 2
    reply = await rig.command({"op": "debug.hang", "seconds": hang_s}, timeout_s=5.0)
    assert reply["ok"], reply
    event = await rig.next_event(lambda e: e.get("kind") == "loop_stalled_at_rest")
    assert event["stall_ms"] >= event["limit_ms"]
    await asyncio.sleep(0.3)
    assert (await rig.status())["state"] == "ready"


@pytest.fixture
async def rig_with_offset_sensor(tmp_path: Path) -> AsyncIterator[RigUnderTest]:
    """A rig whose transducer reads 12 mmHg high before the daemon ever starts."""

    async def offset_the_sensor(rig: RigUnderTest) -> None:
        await rig.sim("sensor_fault", offset_mmhg=12.0)

    async with running_rig(tmp_path, before_daemon=offset_the_sensor) as under_test:
        yield under_test


@pytest.mark.hazard("H13")
async def test_self_test_fails_on_a_transducer_offset_and_fluid_stays_refused(
    rig_with_offset_sensor: RigUnderTest,
) -> None:
    rig = rig_with_offset_sensor
    status = await rig.wait_until(lambda s: s["state"] == "fault", 20.0)
    assert status["fault"]["cause"] == "self_test_failed"
    assert re.search(
        r"pressure_zero: pressure at rest reads 1[12]\.\d+ mmHg", status["fault"]["message"]
    )
    reply = await rig.command({"op": "fluid.prime"})
    assert not reply["ok"] and reply["error"]["code"] == "denied"
    # Fixed and reset, the self-test runs again by itself and passes.
    await rig.sim("sensor_fault", offset_mmhg=0.0)
    assert (await rig.command({"op": "fault.reset"}))["ok"]
    await rig.wait_until(lambda s: s["state"] == "ready", 20.0)


@pytest.mark.hazard("H08", "H09")
async def test_commands_during_the_self_test_are_refused(tmp_path: Path) -> None:
    async with running_rig(tmp_path) as rig:
        await rig.wait_until(lambda s: s["state"] == "self_test", 15.0)
        reply = await rig.command({"op": "fluid.prime"})
        assert not reply["ok"] and "self_test" in reply["error"]["message"]


@pytest.mark.hazard("H07")
async def test_a_pump_that_ignores_its_stop_has_its_power_cut(
    rig: RigUnderTest, hazard_evidence: HazardEvidence
) -> None:
    await rig.irrigate_steadily(1.0, settle_s=0.3)
    await rig.sim("pump_fault", ignores_stop=True)
    sent_at = time.monotonic()
    assert (await rig.command({"op": "fluid.stop"}))["ok"]
    stop = await rig.next_event(
        lambda e: e.get("kind") == "stop" and e.get("cause") == "pump_did_not_stop", 2.0
    )
    assert stop["latched"]
    state = await rig.wait_sim(
        lambda s: not s["board"]["relay_closed"] and not s["pump"]["running"], 1.0
    )
    cut_after_s = state["board"]["relay_opened_at_s"] - sent_at
    print(f"runaway pump: power cut {cut_after_s * 1000:.0f} ms after the ignored stop")
    hazard_evidence.detection_ms(cut_after_s * 1000)
    poll_s = 1.0 / rig.rig.profile.fluid.pump_poll_hz
    assert cut_after_s <= poll_s + 0.2
    assert state["pump"]["last_stop_reason"] == "power"


@pytest.mark.hazard("H12")
async def test_a_stuck_pressure_sensor_stops_the_pump(rig: RigUnderTest) -> None:
    await rig.irrigate_steadily(1.0, settle_s=0.3)
    await rig.sim("sensor_fault", stuck=True)
    stop = await rig.next_event(lambda e: e.get("kind") == "stop", 2.0)
    assert stop["cause"] == "plausibility" and stop["figures"]["check"] == "sensor_stuck"
    assert (await rig.wait_sim(lambda s: not s["pump"]["running"], 1.0))["pump"][
        "last_stop_reason"
    ] == "command"


@pytest.mark.hazard("H13")
async def test_a_transducer_drifting_at_rest_faults_the_rig_and_fluid_is_refused(
    rig: RigUnderTest, hazard_evidence: HazardEvidence
) -> None:
    await rig.irrigate_steadily(1.0, settle_s=0.3)
    assert (await rig.command({"op": "fluid.stop"}))["ok"]
    settle_s = 10 * rig.rig.profile.fluid.line_time_constant_ms / 1000.0
    await asyncio.sleep(settle_s + 0.5)  # the line has drained and the rest check is armed
    rig.drain_events()
    drift_mmhg_per_s = 2.0
    await rig.sim("sensor_fault", drift_mmhg_per_s=drift_mmhg_per_s)
    tolerance_mmhg = rig.rig.profile.fluid.pressure_zero_tolerance_mmhg
    crossed_s = time.monotonic() + tolerance_mmhg / drift_mmhg_per_s
    stop = await rig.next_event(lambda e: e.get("kind") == "stop", 10.0)
    assert stop["cause"] == "plausibility" and stop["figures"]["check"] == "rest_zero"
    assert stop["latched"]
    assert stop["figures"]["rest_pressure_mmhg"] > tolerance_mmhg
    # On the simulator the board's clock is the host's CLOCK_MONOTONIC.
    detected_after_s = stop["figures"]["sample_t_us"] / 1e6 - crossed_s
    hazard_evidence.detection_ms(detected_after_s * 1000)
    assert 0.0 < detected_after_s < 2.0
    reply = await rig.command({"op": "fluid.irrigate", "flow_ml_min": 1.0})
    assert not reply["ok"] and reply["error"]["code"] == "denied"
    assert not (await rig.sim("state"))["pump"]["running"]


@pytest.mark.hazard("H14")
async def test_a_disconnected_pressure_sensor_stops_the_pump(rig: RigUnderTest) -> None:
    await rig.irrigate_steadily(1.0, settle_s=0.3)
    await rig.sim("sensor_fault", disconnected=True)
    stop = await rig.next_event(lambda e: e.get("kind") == "stop", 2.0)
    # The host's range check and the board's own cut-off both see the rail value.
    assert (stop["cause"], stop["figures"].get("check")) in {
        ("plausibility", "pressure_range"),
        ("board_trip", None),
    }
    state = await rig.wait_sim(lambda s: not s["pump"]["running"], 1.0)
    assert not state["board"]["relay_closed"], "the board's cut-off opened the relay as well"
