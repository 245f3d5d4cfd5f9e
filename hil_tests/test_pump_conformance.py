"""NE-1000 conformance: the same assertions against the emulated pump and a real one.

Each test starts from a cold power-up of the pump (the `pump_power` fixture cycles its relay on
the I/O board). The pump runs only at `LOW_RATE_ML_MIN` and for under two seconds, with a target
volume as a backstop; no syringe needs to be loaded. Assertions that only the device model can
make (the motor's state, the quirk's bookkeeping) are guarded by `target.simulated`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from drivers.ne1000.codec import AlarmKind, Direction, Prompt, PumpStatus
from drivers.ne1000.driver import Ne1000Pump, PumpAlarmError, PumpCommandError
from hil_tests.conftest import PumpFactory, Target
from tests.hazard_plugin import HazardEvidence

LOW_RATE_ML_MIN = 0.5
BACKSTOP_VOLUME_UL = 50.0
"""Target volume of every run: the pump stops by itself after 6 s at the low rate."""
OUT_OF_RANGE_RATE_ML_MIN = 9999.0
"""Far above any NE-1000 rate for any syringe (the emulator's top for 14.43 mm is ~9.8 mL/min)."""
SAFE_MODE_TEST_TIMEOUT_S = 1


async def prepare_low_rate_infusion(pump: Ne1000Pump, target: Target) -> None:
    await pump.set_diameter(target.profile.syringe.inner_diameter_mm)
    await pump.set_rate(LOW_RATE_ML_MIN)
    await pump.set_direction(Direction.INFUSE)
    await pump.set_volume_ul(BACKSTOP_VOLUME_UL)


def infused_ul(volume_ml: float) -> float:
    return volume_ml * 1000.0


async def test_connect_survives_the_power_up_quirk(target: Target, make_pump: PumpFactory) -> None:
    pump = await make_pump()  # the pump was just powered up: its first command goes unanswered
    assert pump.is_connected
    assert await pump.query() is PumpStatus.STOPPED
    if target.simulated:
        # The model swallowed the first probe (one timeout) and answered the next with alarm R,
        # so the quirk really was exercised, not avoided.
        assert pump.stats.timeouts == 1
        assert pump.last_alarm is AlarmKind.RESET
        assert target.sim.pump.alarm is None


async def test_safe_mode_is_entered_and_every_reply_passes_its_crc(
    target: Target, pump: Ne1000Pump
) -> None:
    assert pump.safe_mode
    before = (pump.stats.frames_rx, pump.stats.timeouts)
    version = await pump.version()
    assert version
    assert await pump.query() is PumpStatus.STOPPED
    await prepare_low_rate_infusion(pump, target)
    dispensed = await pump.dispensed()
    assert dispensed.status is PumpStatus.STOPPED
    # VER, query, DIA, RAT, DIR, VOL (two frames), DIS: each answered by a CRC-checked frame. A
    # reply in basic framing would not parse in safe mode, so no errors means the pump framed
    # every reply for safe mode, with a good CRC.
    assert pump.stats.frames_rx - before[0] == 8
    assert pump.stats.crc_errors == 0
    assert pump.stats.invalid_bytes == 0
    assert pump.stats.timeouts == before[1]
    if target.simulated:
        assert target.sim.pump.safe_mode
        assert (
            target.sim.pump.safe_mode_timeout_s == target.profile.devices.pump.safe_mode_timeout_s
        )


async def test_settings_are_accepted(target: Target, pump: Ne1000Pump) -> None:
    await pump.set_diameter(target.profile.syringe.inner_diameter_mm)
    await pump.set_rate(LOW_RATE_ML_MIN)
    await pump.set_direction(Direction.WITHDRAW)
    await pump.set_direction(Direction.INFUSE)
    await pump.set_volume_ul(BACKSTOP_VOLUME_UL)
    assert await pump.query() is PumpStatus.STOPPED
    if target.simulated:
        model = target.sim.pump
        assert model.diameter_mm == pytest.approx(target.profile.syringe.inner_diameter_mm)
        assert model.rate_ml_min == pytest.approx(LOW_RATE_ML_MIN)
        assert model.direction is Direction.INFUSE
        assert model.target_volume_ml == pytest.approx(BACKSTOP_VOLUME_UL / 1000.0)


async def test_run_then_stop_shows_infusing_then_stopped(target: Target, pump: Ne1000Pump) -> None:
    await prepare_low_rate_infusion(pump, target)
    await pump.run()
    assert await pump.query() is PumpStatus.INFUSING
    if target.simulated:
        assert target.sim.pump.running
    await pump.stop()
    assert await pump.query() is PumpStatus.STOPPED
    if target.simulated:
        assert not target.sim.pump.running
        assert target.sim.pump.last_stop_reason == "command"


async def test_dispensed_volume_grows_while_running_and_not_after_stop(
    target: Target, pump: Ne1000Pump
) -> None:
    await prepare_low_rate_infusion(pump, target)
    await pump.clear_dispensed(Direction.INFUSE)
    start = await pump.dispensed()
    assert start.infused_ml == 0.0
    await pump.run()
    await asyncio.sleep(0.25)
    midway = await pump.dispensed()
    assert midway.status is PumpStatus.INFUSING
    await asyncio.sleep(0.25)
    await pump.stop()
    stopped = await pump.dispensed()
    assert stopped.status is PumpStatus.STOPPED
    # 0.5 mL/min for 0.5 s is 4.2 uL; the window allows for scheduling and the reply's digits.
    assert 0.0 < infused_ul(midway.infused_ml) < infused_ul(stopped.infused_ml)
    assert 2.0 <= infused_ul(stopped.infused_ml) <= 6.0
    assert stopped.withdrawn_ml == start.withdrawn_ml
    await asyncio.sleep(0.3)
    later = await pump.dispensed()
    assert later.infused_ml == stopped.infused_ml
    if target.simulated:
        assert infused_ul(target.sim.pump.infused_ml) == pytest.approx(
            infused_ul(stopped.infused_ml), abs=0.01
        )


async def test_clear_dispensed_resets_the_infused_volume(target: Target, pump: Ne1000Pump) -> None:
    await prepare_low_rate_infusion(pump, target)
    await pump.run()
    await asyncio.sleep(0.3)
    await pump.stop()
    assert (await pump.dispensed()).infused_ml > 0.0
    await pump.clear_dispensed(Direction.INFUSE)
    assert (await pump.dispensed()).infused_ml == 0.0


async def test_out_of_range_rate_is_refused_and_does_not_start_the_pump(
    target: Target, pump: Ne1000Pump
) -> None:
    await prepare_low_rate_infusion(pump, target)
    # The codec can write 9999 mL/min ("RAT9999MM"), so the refusal must come from the pump.
    with pytest.raises(PumpCommandError) as refused:
        await pump.set_rate(OUT_OF_RANGE_RATE_ML_MIN)
    assert refused.value.code == "OOR"
    assert await pump.query() is PumpStatus.STOPPED
    await asyncio.sleep(0.2)
    assert (await pump.dispensed()).status is PumpStatus.STOPPED
    if target.simulated:
        assert not target.sim.pump.running
        assert target.sim.pump.rate_ml_min == pytest.approx(LOW_RATE_ML_MIN)


@pytest.mark.hazard("H01", "H02")
async def test_stop_nowait_stops_a_running_pump(target: Target, pump: Ne1000Pump) -> None:
    await prepare_low_rate_infusion(pump, target)
    await pump.run()
    assert await pump.query() is PumpStatus.INFUSING
    called_s = time.monotonic()
    tx_done_s = pump.stop_nowait()
    # A safe-mode STP frame is 8 bytes, 4.2 ms at 19200 baud, on an idle line.
    assert called_s < tx_done_s < called_s + 0.1
    assert pump.last_stop_tx_done_s == tx_done_s
    assert await pump.query() is PumpStatus.STOPPED
    assert isinstance(pump.last_stop_reply, Prompt)
    assert pump.last_stop_reply.status is PumpStatus.STOPPED
    if target.simulated:
        assert not target.sim.pump.running
        assert target.sim.pump.last_stop_reason == "command"


@pytest.mark.hazard("H08")
async def test_safe_mode_timeout_stops_the_pump_and_raises_alarm_t(
    target: Target, make_pump: PumpFactory, hazard_evidence: HazardEvidence
) -> None:
    pump = await make_pump(safe_mode_timeout_s=SAFE_MODE_TEST_TIMEOUT_S)
    await prepare_low_rate_infusion(pump, target)
    motor_stopped_s: list[float] = []

    async def watch_motor(for_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(for_s):
                # Polling: the device model's motor state is not signalled.
                while target.sim.pump.running:  # noqa: ASYNC110
                    await asyncio.sleep(0.002)
                motor_stopped_s.append(time.monotonic())

    silence_s = SAFE_MODE_TEST_TIMEOUT_S * 1.5  # nothing is sent to the pump meanwhile
    await pump.run()
    last_command_s = time.monotonic()  # the RUN reply is in: the pump heard the host last then
    async with asyncio.TaskGroup() as tasks:
        if target.simulated:
            assert target.sim.pump.running
            tasks.create_task(watch_motor(silence_s))
        await asyncio.sleep(silence_s)
    try:
        status = await pump.query()
    except PumpAlarmError as exc:
        assert exc.alarm is AlarmKind.SAFE_MODE_TIMEOUT
    else:
        pytest.fail(f"the pump answered {status} after 1.5 timeouts of silence, not alarm T")
    assert pump.last_alarm is AlarmKind.SAFE_MODE_TIMEOUT
    assert await pump.query() is PumpStatus.STOPPED  # reported once; the pump stayed stopped
    if target.simulated:
        assert target.sim.pump.last_stop_reason == "safe_mode_timeout"
        assert len(motor_stopped_s) == 1
        assert motor_stopped_s[0] - last_command_s == pytest.approx(
            SAFE_MODE_TEST_TIMEOUT_S, abs=0.2
        )
        hazard_evidence.detection_ms((motor_stopped_s[0] - last_command_s) * 1000)
