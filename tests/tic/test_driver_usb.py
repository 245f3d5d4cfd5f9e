"""The Tic driver through pyusb's real API into the emulated Tic on the simulated USB backend."""

from __future__ import annotations

import asyncio
import contextlib
import errno
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from drivers.sim.tic_device import StageSettings, TicDefaults, TicModel
from drivers.sim.usb.backend import SimUsbBackend
from drivers.sim.usb.tic import SimTicUsb
from drivers.tic.codec import (
    HomeDirection,
    OperationState,
    PlanningMode,
    Setting,
    TicErrors,
    TicStatus,
)
from drivers.tic.driver import TicStepper
from drivers.tic.usb import TicUsbTransport
from drivers.transport.serial import LinkClosedError

FAST_SPEED = 40_000_000  # 4000 usteps/s
FAST_ACCEL = 4_000_000  # 40000 usteps/s^2
HEARTBEAT_S = 0.05
TIMEOUT_MS = 200
FAST_HOMING = TicDefaults(
    homing_speed_towards_usteps_per_10ks=20_000_000, homing_speed_away_usteps_per_10ks=5_000_000
)


@dataclass
class Rig:
    bus: SimUsbBackend
    device: SimTicUsb
    tic: TicStepper

    @property
    def model(self) -> TicModel:
        return self.device.sync()


def make_rig(stage: StageSettings | None = None) -> Rig:
    bus = SimUsbBackend()
    device = SimTicUsb(TicModel(stage, FAST_HOMING))
    bus.attach(device)
    return Rig(bus, device, TicStepper(TicUsbTransport(backend=bus)))


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    made = make_rig(StageSettings(start_usteps=1000.0, obstacle_usteps=1500.0))
    await made.tic.connect()
    yield made
    await made.tic.close()


async def start_moving(tic: TicStepper) -> None:
    """What a host does before a move: limits, energize, exit safe start."""
    await tic.set_max_speed(FAST_SPEED)
    await tic.set_max_accel(FAST_ACCEL)
    await tic.energize()
    await tic.exit_safe_start()


async def wait_status(
    tic: TicStepper, condition: Callable[[TicStatus], bool], timeout_s: float = 3.0
) -> TicStatus:
    async with asyncio.timeout(timeout_s):
        while True:
            status = await tic.status()
            if condition(status):
                return status
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def heartbeats(tic: TicStepper) -> AsyncIterator[None]:
    task = asyncio.create_task(tic.heartbeat(HEARTBEAT_S))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_powered_up_tic_reports_safe_start_and_an_uncertain_position(rig: Rig) -> None:
    status = await rig.tic.status()
    assert status.operation_state is OperationState.SOFT_ERROR
    assert status.errors == TicErrors.SAFE_START_VIOLATION
    assert status.position_uncertain and status.energized
    assert rig.tic.transport.stats.frames_rx == 2  # connect and this read: one transfer each


async def test_exit_safe_start_and_a_target_position_move_the_motor_there(rig: Rig) -> None:
    await rig.tic.halt_and_set_position(1000)
    async with heartbeats(rig.tic):
        await start_moving(rig.tic)
        await rig.tic.set_target_position(1400)
        status = await wait_status(rig.tic, lambda s: s.position_usteps == 1400)
    assert status.operation_state is OperationState.NORMAL
    assert status.planning_mode is PlanningMode.TARGET_POSITION
    assert not status.position_uncertain
    assert status.encoder_position == 1400  # the stage followed: no obstacle before 1500


async def test_without_exit_safe_start_a_target_is_ignored(rig: Rig) -> None:
    async with heartbeats(rig.tic):
        await rig.tic.set_target_position(500)
        await asyncio.sleep(0.1)
        status = await rig.tic.status()
    assert status.position_usteps == 0 and status.planning_mode is PlanningMode.OFF
    assert rig.model.ignored_targets == 1


async def test_configure_command_timeout_writes_the_setting_and_reinitializes(rig: Rig) -> None:
    await rig.tic.configure_command_timeout(TIMEOUT_MS)
    assert await rig.tic.read_setting(Setting.COMMAND_TIMEOUT) == TIMEOUT_MS
    assert rig.model.command_timeout_ms == TIMEOUT_MS


async def test_configure_settings_writes_only_what_differs_and_reinitializes_once(
    rig: Rig,
) -> None:
    speeds = {Setting.HOMING_SPEED_TOWARDS: 30_000_000, Setting.HOMING_SPEED_AWAY: 5_000_000}
    before = rig.model.requests_handled
    await rig.tic.configure_settings(speeds)
    # Two reads, four set-setting bytes (only the towards speed differs), reinitialize, a read.
    assert rig.model.requests_handled - before == 2 + 4 + 1 + 1
    for field, value in speeds.items():
        assert await rig.tic.read_setting(field) == value
    before = rig.model.requests_handled
    await rig.tic.configure_settings(speeds)
    assert rig.model.requests_handled - before == 2  # already so: read, nothing written


async def test_heartbeats_keep_the_command_timeout_from_firing(rig: Rig) -> None:
    await rig.tic.configure_command_timeout(TIMEOUT_MS)
    async with heartbeats(rig.tic):
        await start_moving(rig.tic)
        await asyncio.sleep(3 * TIMEOUT_MS / 1000)
        status = await rig.tic.status()
    assert TicErrors.COMMAND_TIMEOUT not in status.errors_occurred
    assert status.operation_state is OperationState.NORMAL


async def test_silence_fires_the_command_timeout_and_the_motor_decelerates_to_hold(
    rig: Rig,
) -> None:
    await rig.tic.configure_command_timeout(TIMEOUT_MS)
    await rig.tic.halt_and_set_position(1000)
    async with heartbeats(rig.tic):
        await start_moving(rig.tic)
        await rig.tic.set_target_velocity(-FAST_SPEED // 4)  # reverse, away from the obstacle
        await wait_status(rig.tic, lambda s: s.velocity_usteps_per_10ks == -FAST_SPEED // 4)
    # the host goes silent
    await asyncio.sleep(TIMEOUT_MS / 1000 + 0.15)
    model = rig.model
    assert TicErrors.COMMAND_TIMEOUT in model.errors
    assert model.velocity_usteps_s == 0.0
    held_at = model.position_usteps
    await asyncio.sleep(0.05)
    assert rig.model.position_usteps == held_at
    status = await rig.tic.status()
    assert status.errors == TicErrors.COMMAND_TIMEOUT | TicErrors.SAFE_START_VIOLATION
    assert not status.position_uncertain  # a controlled deceleration: the position is known


async def test_after_a_timeout_nothing_moves_until_safe_start_is_exited_again(rig: Rig) -> None:
    await rig.tic.configure_command_timeout(TIMEOUT_MS)
    await start_moving(rig.tic)
    await asyncio.sleep(TIMEOUT_MS / 1000 + 0.05)
    async with heartbeats(rig.tic):
        await rig.tic.set_target_position(300)  # clears the timeout error, not safe start
        await asyncio.sleep(0.05)
        assert (await rig.tic.status()).position_usteps == 0
        await rig.tic.exit_safe_start()
        await rig.tic.set_target_position(300)
        await wait_status(rig.tic, lambda s: s.position_usteps == 300)


async def test_closing_on_an_obstacle_stalls_the_stage_and_opens_a_position_error(
    rig: Rig,
) -> None:
    await rig.tic.halt_and_set_position(1000)  # counter and encoder agree at the start
    async with heartbeats(rig.tic):
        await start_moving(rig.tic)
        await rig.tic.set_target_position(2500)
        status = await wait_status(rig.tic, lambda s: s.position_usteps == 2500)
    assert status.encoder_position == 1500  # the stage stopped at the obstacle
    assert status.position_usteps - status.encoder_position == 1000
    assert rig.model.stalled
    assert not status.position_uncertain  # the Tic cannot know it lost steps


async def test_go_home_finds_the_reverse_switch_and_sets_position_zero(rig: Rig) -> None:
    async with heartbeats(rig.tic):
        await start_moving(rig.tic)
        await rig.tic.go_home(HomeDirection.REVERSE)
        assert (await rig.tic.status()).homing
        status = await wait_status(rig.tic, lambda s: not s.homing, timeout_s=5.0)
    assert status.position_usteps == 0 and not status.position_uncertain
    assert abs(rig.model.physical_usteps) < 5.0


async def test_halt_and_hold_nowait_stops_at_once_and_marks_the_position_uncertain(
    rig: Rig,
) -> None:
    async with heartbeats(rig.tic):
        await start_moving(rig.tic)
        await rig.tic.set_target_velocity(FAST_SPEED // 8)
        await wait_status(rig.tic, lambda s: s.velocity_usteps_per_10ks > 0)
        rig.tic.halt_and_hold_nowait()
        status = await wait_status(rig.tic, lambda s: s.planning_mode is PlanningMode.OFF)
    assert status.velocity_usteps_per_10ks == 0 and status.position_uncertain
    assert rig.tic.nowait_failures == []


async def test_unplugged_mid_move_the_tic_holds_on_its_timeout_and_is_known_after_replug(
    rig: Rig,
) -> None:
    await rig.tic.configure_command_timeout(TIMEOUT_MS)
    await rig.tic.halt_and_set_position(1000)
    async with heartbeats(rig.tic):
        await start_moving(rig.tic)
        await rig.tic.set_target_position(20_000)  # five seconds away: still moving at the unplug
        await wait_status(rig.tic, lambda s: s.position_usteps > 1050)
        rig.bus.unplug(rig.device)
        with pytest.raises(LinkClosedError):
            await rig.tic.status()
    async with asyncio.timeout(1.0):
        await rig.tic.wait_closed()
    await asyncio.sleep(TIMEOUT_MS / 1000 + 0.15)
    model = rig.model
    assert TicErrors.COMMAND_TIMEOUT in model.errors and model.velocity_usteps_s == 0.0
    held_at = round(model.position_usteps)
    assert 1050 < held_at < 20_000
    rig.bus.plug(rig.device)
    status = await rig.tic.connect()
    assert status.position_usteps == held_at and not status.position_uncertain
    assert TicErrors.COMMAND_TIMEOUT in status.errors
    assert rig.tic.stats.reconnects == 1


async def test_a_tic_powered_only_by_usb_restarts_uncertain_after_a_replug() -> None:
    bus = SimUsbBackend()
    device = SimTicUsb(TicModel(), vin_powered=False)
    bus.attach(device)
    tic = TicStepper(TicUsbTransport(backend=bus))
    await tic.connect()
    await tic.halt_and_set_position(777)
    bus.unplug(device)
    bus.plug(device)
    await tic.close()
    status = await tic.connect()
    assert status.position_usteps == 0 and status.position_uncertain
    await tic.close()


async def test_connect_fails_clearly_when_no_tic_is_attached() -> None:
    tic = TicStepper(TicUsbTransport(backend=SimUsbBackend(), serial_number="424242"))
    with pytest.raises(LinkClosedError, match=r"1ffb:.*serial 424242 is not attached"):
        await tic.connect()


async def test_a_fault_path_halt_that_finds_the_tic_gone_is_recorded_and_closes_the_link(
    rig: Rig,
) -> None:
    rig.bus.unplug(rig.device)
    rig.tic.halt_and_hold_nowait()
    async with asyncio.timeout(1.0):
        await rig.tic.wait_closed()
    assert len(rig.tic.nowait_failures) == 1
    assert getattr(rig.tic.nowait_failures[0], "errno", None) == errno.ENODEV
    with pytest.raises(LinkClosedError):
        rig.tic.halt_and_hold_nowait()  # now known closed: refused at once
