"""Pololu Tic conformance: assertions a real Tic and the emulated one must both pass.

On the emulator (the default) every test runs twice: the Tic on the simulated USB bus, and on
its TTL serial port (a pseudo-terminal, 115200 baud, compact protocol; the emulated Tic then
comes with its command timeout already set to `TIMEOUT_MS`, as a bench Tic set up over USB
would, since serial cannot write settings). With ``--bench-profile``
these tests are skipped until the profile has a basket section naming the Tic (issue 9's
device modules add it); they are written for both: small moves (at most `MOVE_USTEPS` from
where the motor is), the command timeout armed at `TIMEOUT_MS`, the motor de-energized at the
end. On a bench the stage must be free to move `MOVE_USTEPS` forward and back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from drivers.sim.tic_device import TicDefaults, TicModel
from drivers.sim.tic_serial import SimTicSerial
from drivers.sim.usb.backend import SimUsbBackend
from drivers.sim.usb.tic import SimTicUsb
from drivers.tic.codec import OperationState, Setting, TicErrors, TicProduct
from drivers.tic.driver import TicStepper
from drivers.tic.serial import TicSerialTransport
from drivers.tic.usb import TicUsbTransport

MOVE_USTEPS = 200
SPEED = 10_000_000  # 1000 usteps/s
ACCEL = 1_000_000  # 10000 usteps/s^2
TIMEOUT_MS = 300
HEARTBEAT_S = 0.05


SERIAL_BAUD = 115_200


@dataclass
class TicTarget:
    tic: TicStepper
    transport: str
    """usb or serial."""


@pytest.fixture(params=["usb", "serial"])
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TicTarget]:
    if request.config.getoption("--bench-profile", default=None) is not None:
        pytest.skip("a bench profile has no basket (Tic) section yet: issue 9's device modules")
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "usb":
            bus = SimUsbBackend()
            bus.attach(SimTicUsb(TicModel()))
            tic = TicStepper(TicUsbTransport(backend=bus))
        else:
            face = SimTicSerial(
                TicModel(defaults=TicDefaults(command_timeout_ms=TIMEOUT_MS)),
                link_dir=tmp_path,
                baudrate=SERIAL_BAUD,
            )
            await face.start()
            stack.push_async_callback(face.stop)
            tic = TicStepper(TicSerialTransport(str(face.path), baudrate=SERIAL_BAUD))
        await tic.connect()
        try:
            yield TicTarget(tic, request.param)
        finally:
            with contextlib.suppress(Exception):
                await tic.deenergize()
            await tic.close()


@contextlib.asynccontextmanager
async def heartbeats(tic: TicStepper) -> AsyncIterator[None]:
    task = asyncio.create_task(tic.heartbeat(HEARTBEAT_S))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_the_tic_identifies_itself(target: TicTarget) -> None:
    if target.transport != "usb":
        pytest.skip("a Tic identifies itself by its USB descriptors only")
    link = target.tic.transport
    assert isinstance(link, TicUsbTransport)
    assert link.link.product_id in {int(p) for p in TicProduct}
    assert link.link.serial_number


async def test_the_status_is_readable_and_plausible(target: TicTarget) -> None:
    status = await target.tic.status()
    assert status.operation_state in OperationState
    assert status.vin_mv > 0
    assert (await target.tic.status()).up_time_ms >= status.up_time_ms


async def test_the_command_timeout_is_armed_and_reads_back(target: TicTarget) -> None:
    await target.tic.configure_command_timeout(TIMEOUT_MS)
    assert await target.tic.read_setting(Setting.COMMAND_TIMEOUT) == TIMEOUT_MS


async def test_a_small_move_reaches_its_target_and_returns(target: TicTarget) -> None:
    tic = target.tic
    await tic.configure_command_timeout(TIMEOUT_MS)
    await tic.halt_and_set_position(0)
    async with heartbeats(tic):
        await tic.set_max_speed(SPEED)
        await tic.set_max_accel(ACCEL)
        await tic.energize()
        await tic.exit_safe_start()
        for goal in (MOVE_USTEPS, 0):
            await tic.set_target_position(goal)
            async with asyncio.timeout(2.0):
                # Polling: the Tic tells nothing unless asked.
                while (status := await tic.status()).position_usteps != goal:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            assert status.operation_state is OperationState.NORMAL


async def test_silence_raises_the_command_timeout_and_stops_the_motor(target: TicTarget) -> None:
    tic = target.tic
    await tic.configure_command_timeout(TIMEOUT_MS)
    async with heartbeats(tic):
        await tic.set_max_speed(SPEED // 10)
        await tic.set_max_accel(ACCEL)
        await tic.energize()
        await tic.exit_safe_start()
        await tic.set_target_velocity(SPEED // 10)
        await asyncio.sleep(0.1)
    await asyncio.sleep(TIMEOUT_MS / 1000 + 0.2)  # silence
    status = await tic.status()
    assert TicErrors.COMMAND_TIMEOUT in status.errors
    assert status.velocity_usteps_per_10ks == 0
    assert status.operation_state is not OperationState.NORMAL
