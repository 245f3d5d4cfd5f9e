"""The fluid path end to end: real Mosquitto, simulator and daemon processes, real wire protocols.

Each test names the behaviour it proves; each would fail if that behaviour were removed.
"""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from tests.hazard_plugin import HazardEvidence
from tests.system.harness import RigUnderTest

pytestmark = [pytest.mark.system, pytest.mark.timeout(60)]

RESISTANCE_STOPS = {"resistance_limit", "resistance_rise", "pressure_limit"}


async def test_irrigate_shows_live_pressure_and_flow(rig: RigUnderTest) -> None:
    await rig.irrigate_steadily(1.0, settle_s=1.5)
    telemetry = await rig.mqtt.subscribe(rig.topics.fluid_telemetry)
    import json

    samples = [json.loads((await telemetry.get()).payload) for _ in range(10)]
    last = samples[-1]
    assert last["mode"] == "irrigating"
    assert last["flow_ml_min"] == pytest.approx(1.0, rel=0.05)
    # Baseline duct: 15 mmHg·min/mL at the tip plus 2 in the tubing (docs/simulator.md).
    assert last["pressure_mmhg"] == pytest.approx(17.0, abs=2.0)
    assert last["resistance_mmhg_min_per_ml"] == pytest.approx(17.0, abs=2.0)
    assert last["links"]["board"]["bytes_rx"] > 0 and last["links"]["pump"]["bytes_tx"] > 0
    times = [s["t_us"] for s in samples]
    assert times == sorted(times) and len(set(times)) > 5, "telemetry is live, not a repeated frame"


@pytest.mark.hazard("H02", "H03")
async def test_tip_against_wall_stops_pump_latches_and_resets_to_zero_flow(
    rig: RigUnderTest, hazard_evidence: HazardEvidence
) -> None:
    await rig.irrigate_steadily(1.0)
    await rig.sim("scenario", name="tip_against_wall")
    stop = await rig.next_event(lambda e: e.get("kind") == "stop")
    assert stop["cause"] in RESISTANCE_STOPS
    assert stop["latched"] is True
    assert stop["figures"]["resistance_mmhg_min_per_ml"] is not None
    assert stop["figures"]["flow_ml_min"] == pytest.approx(1.0, rel=0.1)
    assert stop["trigger_sample_t_us"] is not None and stop["stop_tx_done_us"] is not None
    assert 0 < stop["detection_to_stop_ms"] < 50
    print(
        f"tip against wall: {stop['cause']}, first sample over the limit to stop on the wire {stop['detection_to_stop_ms']:.2f} ms"
    )
    hazard_evidence.detection_ms(stop["detection_to_stop_ms"])

    sim_state = await rig.wait_sim(lambda s: not s["pump"]["running"], 1.0)
    # Stopped by the command; the relief withdraw that follows a resistance stop (on by
    # default) then runs to its volume and stops there.
    assert sim_state["pump"]["last_stop_reason"] in {"command", "volume"}
    assert not sim_state["world"]["perforated"]
    # The bolus the duct gets after the hazard showed stays under the post-release limit (ECRI).
    volumes = await rig.sim("volume_since", t_s=stop["trigger_sample_t_us"] / 1e6)
    # Net of the relief withdraw that follows the stop, which may take back more than went in.
    assert volumes["pumped_ml"] * 1000 <= rig.rig.profile.limits.post_release_bolus_max_ul

    status = await rig.status()
    assert status["mode"] == "fault" and status["fault"]["cause"] == stop["cause"]

    # Latched: nothing moves the pump until a reset, and the first cause is kept.
    refused = await rig.command({"op": "fluid.irrigate", "flow_ml_min": 1.0})
    assert not refused["ok"] and refused["error"]["code"] == "denied"
    await rig.sim("clear")
    reset = await rig.command({"op": "fault.reset"})
    assert reset["ok"] and reset["result"]["cleared"]["cause"] == stop["cause"]

    # After the reset: stopped at zero flow, and it stays so: the old setpoint never resumes.
    await asyncio.sleep(0.5)
    status = await rig.status()
    assert status["mode"] == "stopped" and status["fault"] is None
    assert status["setpoint"]["flow_ml_min"] == 0.0
    sim_state = await rig.sim("state")
    assert not sim_state["pump"]["running"] and sim_state["pump"]["flow_ml_min"] == 0.0

    # A new, explicit command is what starts it again.
    await rig.irrigate_steadily(1.0, settle_s=0.3)
    assert (await rig.sim("state"))["pump"]["running"]


@pytest.mark.hazard("H08")
async def test_sigkill_of_daemon_board_watchdog_opens_relay_in_time(
    rig: RigUnderTest, hazard_evidence: HazardEvidence
) -> None:
    watchdog_s = rig.rig.profile.devices.board.watchdog_timeout_ms / 1000.0
    await rig.irrigate_steadily(1.0, settle_s=0.3)
    killed_at = time.monotonic()
    rig.kill_daemon(signal.SIGKILL)
    state = await rig.wait_sim(lambda s: not s["board"]["relay_closed"], watchdog_s + 1.0)
    # The simulator stamps the relay's edge on CLOCK_MONOTONIC, the clock this process reads.
    opened_after_s = state["board"]["relay_opened_at_s"] - killed_at
    print(
        f"board watchdog opened the pump relay {opened_after_s * 1000:.0f} ms after SIGKILL (timeout {watchdog_s * 1000:.0f} ms)"
    )
    hazard_evidence.detection_ms(opened_after_s * 1000)
    assert "watchdog" in state["board"]["trips"]
    assert not state["pump"]["running"] and state["pump"]["flow_ml_min"] == 0.0
    assert opened_after_s <= watchdog_s + 0.15, (
        f"relay opened {opened_after_s * 1000:.0f} ms after the kill"
    )


@pytest.mark.hazard("H08")
async def test_sigkill_of_daemon_pump_safe_mode_stops_it_even_with_relay_welded(
    rig: RigUnderTest, hazard_evidence: HazardEvidence
) -> None:
    """Two independent device-side layers: with the relay contact welded shut, the pump's own
    safe-mode timeout must still stop it."""
    timeout_s = rig.rig.profile.devices.pump.safe_mode_timeout_s
    await rig.sim("relay_welded", welded=True)
    await rig.irrigate_steadily(1.0, settle_s=0.3)
    killed_at = time.monotonic()
    rig.kill_daemon(signal.SIGKILL)
    state = await rig.wait_sim(lambda s: not s["pump"]["running"], timeout_s + 2.0)
    stopped_after_s = state["pump"]["stopped_at_s"] - killed_at
    print(
        f"pump safe-mode timeout stopped it {stopped_after_s * 1000:.0f} ms after SIGKILL (timeout {timeout_s} s)"
    )
    hazard_evidence.detection_ms(stopped_after_s * 1000)
    assert state["pump"]["last_stop_reason"] == "safe_mode_timeout"
    assert state["pump"]["alarm"] == "SAFE_MODE_TIMEOUT"
    assert timeout_s - 0.3 <= stopped_after_s <= timeout_s + 0.5, (
        f"stopped after {stopped_after_s:.2f} s"
    )


@pytest.mark.hazard("H08")
async def test_sigterm_shutdown_leaves_pump_stopped(
    rig: RigUnderTest, hazard_evidence: HazardEvidence
) -> None:
    await rig.irrigate_steadily(1.0, settle_s=0.3)
    terminated_at = time.monotonic()
    rig.kill_daemon(signal.SIGTERM)
    state = await rig.wait_sim(lambda s: not s["pump"]["running"], 1.0)
    stopped_after_s = state["pump"]["stopped_at_s"] - terminated_at
    print(f"SIGTERM: pump stopped by the daemon {stopped_after_s * 1000:.1f} ms after the signal")
    hazard_evidence.detection_ms(stopped_after_s * 1000)
    assert stopped_after_s < 0.05
    assert state["pump"]["last_stop_reason"] == "command", "the daemon stopped it, not a timeout"
    assert rig.rig.daemon is not None
    async with asyncio.timeout(5):
        await rig.rig.daemon.wait()
    assert rig.rig.daemon.returncode == 0
