"""The Tic driver over TTL serial into the emulated Tic on a pseudo-terminal."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drivers.sim.tic_device import TicModel
from drivers.sim.tic_serial import SimTicSerial
from drivers.tic.codec import OperationState, PlanningMode, TicErrors, crc7
from drivers.tic.driver import TicStepper
from drivers.tic.serial import TicSerialTransport

BAUD = 115200


@pytest.fixture
async def emulated(tmp_path: Path) -> AsyncIterator[SimTicSerial]:
    sim = SimTicSerial(TicModel(), link_dir=tmp_path, baudrate=BAUD, crc=True)
    await sim.start()
    yield sim
    await sim.stop()


async def test_a_move_over_serial_with_crc_and_the_pololu_protocol(emulated: SimTicSerial) -> None:
    tic = TicStepper(
        TicSerialTransport(str(emulated.path), baudrate=BAUD, device_number=14, crc=True)
    )
    status = await tic.connect()
    assert status.errors == TicErrors.SAFE_START_VIOLATION
    await tic.set_max_speed(20_000_000)
    await tic.set_max_accel(2_000_000)
    await tic.exit_safe_start()
    await tic.set_target_position(200)
    async with asyncio.timeout(2.0):
        while (status := await tic.status()).position_usteps != 200:
            await tic.reset_command_timeout()
            await asyncio.sleep(0.02)
    assert status.operation_state is OperationState.NORMAL
    assert status.planning_mode is PlanningMode.TARGET_POSITION
    assert tic.stats.timeouts == 0
    await tic.close()


async def test_a_packet_with_a_bad_crc_is_ignored_and_raises_the_serial_crc_error(
    emulated: SimTicSerial,
) -> None:
    transport = TicSerialTransport(str(emulated.path), baudrate=BAUD, crc=True)
    tic = TicStepper(transport)
    await transport.open()
    bad_crc = (crc7(b"\x83") + 1) & 0x7F
    transport.link.write(bytes((0x83, bad_crc)))  # exit safe start with a corrupt CRC
    status = await tic.status()
    assert TicErrors.SAFE_START_VIOLATION in status.errors  # it was not acted on
    assert TicErrors.SERIAL_CRC | TicErrors.SERIAL_ERROR in status.errors_occurred
    await tic.close()
