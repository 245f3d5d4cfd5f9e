"""The simulator's relay cuts the pump's power the moment it opens, not at the next physics step.

A real relay and a real pump share no clock: the contact opens and the motor loses its supply
together. The simulator steps its world every few milliseconds, so a state read between two steps
could show the relay open and the pump still running (the H08 SIGKILL test once did). Here the
world is never stepped after the pump starts, except where a test steps it itself: whatever stops
the pump is the relay's own cut.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drivers.ioboard import IoBoard
from drivers.ne1000 import Ne1000Pump
from drivers.sim.rig_sim import RigSimulator, SimSettings
from drivers.transport.tasks import cancel_and_wait
from firmware.protocol import WATCHDOG_MAX_MS


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[RigSimulator, IoBoard]]:
    """The simulated rig with its relay closed and the pump infusing, its physics stopped."""
    async with RigSimulator(SimSettings(link_dir=tmp_path / "dev")) as sim:
        physics = asyncio.create_task(sim.run())
        board = IoBoard(str(sim.board_port.path))
        pump = Ne1000Pump(str(sim.pump_port.path))
        await board.connect()
        heartbeats = asyncio.create_task(_heartbeats(board))
        try:
            await board.configure_watchdog(WATCHDOG_MAX_MS)  # armed, or the relay stays open
            await board.set_pump_relay(True)
            await pump.connect()
            await pump.set_rate(1.0)
            await pump.run()
            await cancel_and_wait(physics)
            await cancel_and_wait(heartbeats)  # each would step the world
            assert sim.board.relay_closed and sim.pump.running and sim.pump.powered
            yield sim, board
        finally:
            await cancel_and_wait(heartbeats)
            await cancel_and_wait(physics)
            await pump.close()
            await board.close()


async def _heartbeats(board: IoBoard) -> None:
    while True:
        await board.heartbeat()
        await asyncio.sleep(0.1)


async def test_opening_the_relay_stops_the_pump_as_the_command_arrives(
    running: tuple[RigSimulator, IoBoard],
) -> None:
    sim, board = running
    await board.set_pump_relay(False)  # acknowledged: the board has acted on it
    assert not sim.board.relay_closed and not sim.board.trips  # opened by the command
    assert not sim.pump.powered and not sim.pump.running
    assert sim.pump.last_stop_reason == "power"
    assert sim.relay_opened_at_s is not None
    assert sim.pump_stopped_at_s == sim.relay_opened_at_s


async def test_a_welded_relay_leaves_the_pump_its_power(
    running: tuple[RigSimulator, IoBoard],
) -> None:
    sim, board = running
    sim.relay_welded = True
    await board.set_pump_relay(False)
    assert not sim.board.relay_closed
    assert sim.pump.powered and sim.pump.running


async def test_a_trip_in_a_step_cuts_the_power_in_that_step(
    running: tuple[RigSimulator, IoBoard],
) -> None:
    sim, board = running
    await board.configure_watchdog(50)
    tripped_at_s = time.monotonic() + 0.2  # no heartbeat for 200 ms: the watchdog trips
    sim.step(tripped_at_s)
    assert not sim.board.relay_closed
    assert not sim.pump.powered and not sim.pump.running
    assert sim.pump_stopped_at_s == sim.relay_opened_at_s == tripped_at_s
