"""The fluid controller against the physics world: stops, latching, recovery, modes, volumes."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from rig.config import FluidLoopConfig, LimitsConfig
from rig.fluid.controller import CommandRejectedError, FluidMode, StateConflictError
from rig.fluid.events import StopCause
from rig.fluid.resistance import ResistanceReading
from rig.fluid.supervision import STALE_AFTER_S
from rig.safety.interlock import InterlockDeniedError
from tests.fluid.plant import Plant

RESISTANCE_CAUSES = {StopCause.RESISTANCE_LIMIT, StopCause.RESISTANCE_RISE}


async def test_steady_irrigation_runs_without_a_stop_for_a_minute() -> None:
    plant = Plant()
    plant.controller.irrigate(1.0)
    await plant.run_for(60.0)
    assert plant.events == []
    assert plant.pump.running
    reading = plant.controller.last_reading
    assert reading.resistance_mmhg_min_per_ml == pytest.approx(17.0, rel=0.05)


@pytest.mark.hazard("H02")
async def test_tip_against_wall_stops_pump_with_cause_and_first_sample_time() -> None:
    plant = Plant()
    plant.controller.irrigate(1.0)
    await plant.run_for(1.5)
    plant.world.set_tip_resistance_target(15.0 * 12, ramp_s=0.1)
    await plant.run_for(2.0)
    assert len(plant.events) == 1
    event = plant.events[0]
    assert event.cause in RESISTANCE_CAUSES
    assert event.latched
    assert "stop_nowait" in plant.pump.calls and not plant.pump.running
    assert event.trigger_sample_t_us is not None and event.stop_tx_done_us is not None
    assert event.trigger_sample_t_us <= event.figures["sample_t_us"]
    assert plant.controller.setpoint.mode is FluidMode.FAULT
    assert not plant.world.perforated


@pytest.mark.hazard("H01")
async def test_full_occlusion_stops_before_the_board_cutoff() -> None:
    plant = Plant()
    plant.controller.irrigate(1.0)
    await plant.run_for(1.5)
    plant.world.occlude(ramp_s=0.02)
    await plant.run_for(3.0)
    assert plant.events and plant.events[0].cause in RESISTANCE_CAUSES | {StopCause.PRESSURE_LIMIT}
    assert plant.world.line_pressure_mmhg < LimitsConfig().board_cutoff_mmhg


async def test_no_false_stop_while_the_line_fills_or_the_flow_changes() -> None:
    plant = Plant()
    plant.controller.irrigate(2.0)
    await plant.run_for(2.0)
    plant.controller.irrigate(0.5)
    await plant.run_for(2.0)
    plant.controller.irrigate(2.5)
    await plant.run_for(2.0)
    assert plant.events == []


@pytest.mark.hazard("H03")
async def test_latched_fault_refuses_motion_and_keeps_first_cause() -> None:
    plant = Plant()
    plant.controller.irrigate(1.0)
    await plant.run_for(1.5)
    plant.world.occlude()
    await plant.run_for(2.0)
    first = plant.events[0]
    with pytest.raises(InterlockDeniedError, match="fault latched"):
        plant.controller.irrigate(1.0)
    plant.interlock.trip(StopCause.PUMP_ALARM, "a later fault", mode="fault")
    assert plant.interlock.latched is first


@pytest.mark.hazard("H03")
async def test_reset_restarts_at_zero_flow_never_the_old_setpoint() -> None:
    plant = Plant()
    plant.controller.irrigate(1.0)
    await plant.run_for(1.5)
    plant.world.occlude()
    await plant.run_for(2.0)
    plant.world.clear()
    calls_before = list(plant.pump.calls)
    cleared = await plant.controller.reset()
    assert cleared is not None and cleared.cause in RESISTANCE_CAUSES | {StopCause.PRESSURE_LIMIT}
    await plant.run_for(2.0)
    assert plant.controller.setpoint.mode is FluidMode.STOPPED
    assert plant.controller.setpoint.flow_ml_min == 0.0
    assert not plant.pump.running
    assert "run" not in plant.pump.calls[len(calls_before) :]


@pytest.mark.hazard("H22")
async def test_perforation_pressure_falls_while_flow_continues_stops_pump() -> None:
    plant = Plant()
    plant.controller.irrigate(1.0)
    await plant.run_for(2.0)
    plant.world.set_leak_resistance(3.0)
    await plant.run_for(1.0)
    assert [e.cause for e in plant.events] == [StopCause.LEAK_OR_PERFORATION]


@pytest.mark.hazard("H01")
async def test_pressure_mode_holds_setpoint_without_overshooting_the_cap() -> None:
    plant = Plant()
    plant.controller.hold_pressure(25.0)
    peak = 0.0
    for _ in range(40):
        await plant.run_for(0.1)
        peak = max(peak, plant.world.line_pressure_mmhg)
    assert plant.events == []
    assert plant.world.line_pressure_mmhg == pytest.approx(25.0, abs=2.0)
    assert peak < LimitsConfig().irrigation_pressure_cap_mmhg


async def test_a_run_counts_from_its_acceptance_so_a_conflicting_command_before_the_pump_starts_is_refused() -> (
    None
):
    """In CI a bolus sent 8 ms after an acknowledged hold, before the pump had started,
    replaced the hold: the acknowledged command was lost and the conflict unreported."""
    plant = Plant()
    plant.controller.hold_pressure(25.0)
    assert not plant.pump.running  # accepted; the actuation has not run yet
    with pytest.raises(StateConflictError, match="stop first"):
        plant.controller.bolus(0.1, 0.5)
    assert plant.controller.setpoint.mode is FluidMode.HOLD_PRESSURE
    plant.controller.irrigate(1.0)  # saline to saline: a new setpoint for the same run
    await plant.run_for(1.0)
    assert plant.pump.running and plant.controller.setpoint.mode is FluidMode.IRRIGATING

    plant = Plant()
    plant.controller.bolus(0.05, 0.3)
    with pytest.raises(StateConflictError, match="bolus in progress"):
        plant.controller.bolus(0.05, 0.3)  # nor a second volume over the first
    with pytest.raises(StateConflictError, match="while the pump runs"):
        plant.controller.irrigate(1.0)
    plant.controller.stop()
    plant.controller.irrigate(1.0)  # stopped, anything may start
    await plant.run_for(1.0)
    assert plant.pump.running and plant.events[0].cause is StopCause.OPERATOR


@pytest.mark.hazard("H01")
async def test_irrigation_backs_off_near_the_pressure_cap() -> None:
    limits = LimitsConfig()
    plant = Plant()
    plant.world.set_tip_resistance_target(26.0, ramp_s=0.0)  # 2 mL/min would give ~56 mmHg
    plant.controller.irrigate(2.0)
    await plant.run_for(6.0)
    assert plant.controller.applied_flow_ml_min < 2.0
    assert plant.world.line_pressure_mmhg < limits.irrigation_pressure_cap_mmhg + 1.0


@pytest.mark.hazard("H05")
async def test_bolus_delivers_its_volume_then_counts_contrast() -> None:
    plant = Plant()
    plant.controller.bolus(0.05, 0.3)
    await plant.run_for(12.0)
    completed = [e for e in plant.events if e.cause is StopCause.COMPLETED]
    assert completed and not completed[0].latched
    assert plant.controller.contrast_ul == pytest.approx(50.0, abs=2.0)
    assert plant.controller.setpoint.mode is FluidMode.STOPPED


@pytest.mark.hazard("H05")
async def test_bolus_beyond_the_cumulative_contrast_cap_is_refused() -> None:
    plant = Plant()
    with pytest.raises(CommandRejectedError, match="volume_ml"):
        plant.controller.bolus(LimitsConfig().contrast_volume_cap_ml + 0.1, 0.2)
    assert plant.pump.calls == []


@pytest.mark.hazard("H04")
async def test_saline_volume_cap_stops_and_latches() -> None:
    limits = LimitsConfig(saline_volume_cap_ml=0.05)
    plant = Plant(limits)
    plant.controller.irrigate(3.0)
    await plant.run_for(2.0)
    assert [e.cause for e in plant.events] == [StopCause.SALINE_VOLUME_CAP]
    assert plant.controller.saline_ul == pytest.approx(50.0, abs=3.0)


@pytest.mark.hazard("H11")
async def test_stale_pressure_data_stops_the_pump() -> None:
    plant = Plant()
    plant.controller.irrigate(1.0)
    await plant.run_for(0.5)
    plant.clock.advance(STALE_AFTER_S + 0.01)
    plant.controller.check_freshness(plant.clock.monotonic())
    assert [e.cause for e in plant.events] == [StopCause.PRESSURE_DATA_STALE]
    assert not plant.pump.running


async def test_a_sample_waiting_to_be_read_is_not_stale_but_a_silent_board_is() -> None:
    """The actuation step judges the samples' age after the pending reads: a loop that was busy
    for longer than the limit has samples in its queue, not a board gone quiet."""
    plant = Plant()
    plant.controller.irrigate(1.0)
    await plant.run_for(0.5)
    plant.clock.advance(STALE_AFTER_S + 0.05)  # the loop busy: no sample handled meanwhile
    asyncio.get_running_loop().call_soon(plant._sample)  # ... though one is ready to read
    await plant.controller.actuate_once(plant.read_dispensed_ml)
    assert plant.events == [] and plant.pump.running
    plant.clock.advance(STALE_AFTER_S + 0.05)  # and now nothing comes
    await plant.controller.actuate_once(plant.read_dispensed_ml)
    assert [e.cause for e in plant.events] == [StopCause.PRESSURE_DATA_STALE]


async def test_operator_stop_does_not_latch() -> None:
    plant = Plant()
    plant.controller.irrigate(1.0)
    await plant.run_for(0.5)
    plant.controller.stop()
    assert plant.events[-1].cause is StopCause.OPERATOR and not plant.events[-1].latched
    plant.controller.irrigate(1.0)
    await plant.run_for(0.2)
    assert plant.pump.running


@pytest.mark.hazard("H10")
async def test_stop_falls_back_to_the_power_relay_when_the_pump_cannot_be_written() -> None:
    plant = Plant()
    plant.controller.irrigate(1.0)
    await plant.run_for(1.0)
    plant.pump.stop_fails = True
    plant.world.occlude()
    await plant.run_for(2.0)
    assert plant.events and plant.relay.calls == ["open"]


@pytest.mark.hazard("H03", "H16")
async def test_fault_during_start_sequence_never_sends_run() -> None:
    plant = Plant()
    plant.controller.irrigate(1.0)

    original = plant.pump.set_rate

    async def set_rate_then_fault(ml_min: float) -> None:
        await original(ml_min)
        plant.interlock.trip(StopCause.BOARD_TRIP, "e-stop pressed mid-sequence", mode="irrigating")

    plant.pump.set_rate = set_rate_then_fault  # type: ignore[method-assign]
    await plant.controller.actuate_once(plant.read_dispensed_ml)
    assert "run" not in plant.pump.calls
    assert not plant.pump.running and not plant.controller.pump_running


@pytest.mark.hazard("H03")
async def test_relief_withdraws_what_the_line_holds_above_the_target_up_to_its_cap() -> None:
    plant = Plant()
    plant.controller.irrigate(1.0)
    await plant.run_for(1.5)
    plant.world.occlude()
    await plant.run_for(1.5)
    assert plant.events
    held_mmhg = plant.events[0].figures["pressure_mmhg"]
    assert isinstance(held_mmhg, float)
    tail = plant.pump.calls[plant.pump.calls.index("stop_nowait") :]
    # The profile's compliance: 300 ms / 17 mmHg·min/mL = 0.294 uL/mmHg, above 5 mmHg.
    expected_ul = 300.0 / 60.0 / 17.0 * (held_mmhg - 5.0)
    assert tail[:3] == ["stop_nowait", "dir WITHDRAW", "rate 1.000"]
    assert tail[3].startswith("volume ") and tail[4] == "run"
    assert abs(float(tail[3].split()[1]) - expected_ul) <= 1.0
    # The occluded duct is left at about the target, whatever it held.
    assert 3.0 < plant.world.line_pressure_mmhg < 8.0
    capped = Plant(LimitsConfig(relief_withdraw_ul=2.0))
    capped.controller.irrigate(1.0)
    await capped.run_for(1.5)
    capped.world.occlude()
    await capped.run_for(1.0)
    assert "volume 2" in capped.pump.calls
    off = Plant(LimitsConfig(relief_withdraw_ul=0.0))
    off.controller.irrigate(1.0)
    await off.run_for(1.5)
    off.world.occlude()
    await off.run_for(1.0)
    assert "dir WITHDRAW" not in off.pump.calls


async def _line_off(loop: FluidLoopConfig, seconds: float) -> Plant:
    """Irrigate at 1 mL/min with the line open to air past the transducer: it reads only the
    tubing's drop, 2 mmHg at 1 mL/min."""
    plant = Plant(loop=loop)
    plant.world.set_leak_resistance(0.05)
    plant.controller.irrigate(1.0)
    await plant.run_for(seconds)
    return plant


async def test_the_profile_sets_the_line_models_floor_and_its_tolerances() -> None:
    # A nominal of 17 puts the floor of an unlearned duct at a quarter of it: 4.25 mmHg at
    # 1 mL/min. The open line's 2 mmHg is within the default 3 mmHg of it...
    assert (await _line_off(FluidLoopConfig(), 2.0)).events == []
    # ... but not within 1 mmHg.
    tight = FluidLoopConfig(line_model_tolerance_mmhg=1.0)
    assert [(e.cause, e.figures.get("check")) for e in (await _line_off(tight, 1.0)).events] == [
        (StopCause.PLAUSIBILITY, "pressure_model")
    ]
    # A nominal of 8 puts the floor at 2 mmHg: then the open line looks like a duct.
    low = FluidLoopConfig(nominal_resistance_mmhg_min_per_ml=8.0, line_model_tolerance_mmhg=1.0)
    assert (await _line_off(low, 2.0)).events == []
    # A longer duration lets it run longer before the same finding.
    slow = FluidLoopConfig(line_model_tolerance_mmhg=1.0, line_model_tolerance_ms=1500.0)
    plant = await _line_off(slow, 1.5)
    assert plant.events == []
    await plant.run_for(1.5)
    assert [e.figures.get("check") for e in plant.events] == ["pressure_model"]


async def test_a_sample_without_an_estimate_breaks_a_run_over_the_rise_limit() -> None:
    """stop-latency at 3 mL/min reported a stop 215 ms after its 'first sample over the limit':
    one sample over, then none while the rise windows refilled after a step of the flow, then
    one more over counted as the second of a run."""
    plant = Plant()
    plant.controller.irrigate(1.0)
    await plant.run_for(1.5)
    estimator = plant.controller._estimator
    real_update = estimator.update
    script = iter([40.0, None, 40.0, 10.0, None, 40.0, 10.0])

    def scripted(t_s: float, pressure_mmhg: float, flow_ml_min: float) -> ResistanceReading:
        reading = real_update(t_s, pressure_mmhg, flow_ml_min)
        return replace(reading, rise_mmhg_min_per_ml_per_s=next(script, 0.0))

    estimator.update = scripted  # type: ignore[method-assign]
    await plant.run_for(0.02)
    assert [e.cause for e in plant.events] == []
