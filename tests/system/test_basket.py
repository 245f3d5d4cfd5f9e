"""The basket on the simulated rig: the Tic on the simulator's USB bus, the daemon's controller,
the interlock's rules; one in-process rig for the whole capture (then closing on nothing, and on
the wall with a stalled host); one with the Tic on its TTL serial port for homing (an
incremental encoder, the Tic powered up with the basket left out), the refusals and the Tic
unplugged mid-close."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from drivers.sim.rig_sim import RigSimulator
from rig.api.roles import Role
from rig.config import RigProfile
from rig.devices.basket import BasketDevice
from rig.devices.basket_machine import BasketState
from rig.events.journal import JOURNAL_FILE, read_journal
from rig.events.models import BasketChanged
from rig.fluid.events import StopCause
from tests.system.inprocess import InProcessRig, inprocess_rig

pytestmark = pytest.mark.system


def _basket(rig: InProcessRig) -> BasketDevice:
    return rig.daemon.devices.one(BasketDevice)


async def _state_is(rig: InProcessRig, state: BasketState, timeout_s: float = 10.0) -> None:
    await rig.wait_for(
        lambda: _basket(rig).machine.state is state, timeout_s, f"the basket {state}"
    )


def _stage_usteps(rig: InProcessRig) -> float:
    return rig.sim.usb.tic.sync().physical_usteps


def _brisk(profile: RigProfile) -> RigProfile:
    """A basket twice as fast as the profile's (the test's time), closing still slower than
    opening: a grasp is still seen within one status of touching (40 usteps a period)."""
    basket = profile.devices.basket
    assert basket is not None
    faster = basket.model_copy(
        update={
            "open_speed_usteps_per_10ks": 2 * basket.open_speed_usteps_per_10ks,
            "close_speed_usteps_per_10ks": 2 * basket.close_speed_usteps_per_10ks,
        }
    )
    return profile.model_copy(
        update={"devices": profile.devices.model_copy(update={"basket": faster})}
    )


@pytest.mark.hazard("H18", "H16", "H17")
async def test_closing_on_the_lesion_captures_it_on_nothing_closes_and_on_the_wall_stops_at_the_limit(
    tmp_path: Path,
) -> None:
    async with inprocess_rig(tmp_path, profile=_brisk) as rig:
        await rig.wait_ready()
        await _state_is(rig, BasketState.RETRACTED)
        await rig.ok({"op": "basket.open"})
        await _state_is(rig, BasketState.OPEN)
        await rig.ok({"op": "basket.close"})
        await _state_is(rig, BasketState.CAPTURED)
        held_at = _stage_usteps(rig)
        assert abs(held_at - rig.sim.usb.tic.model.stage.obstacle_usteps) < 1  # type: ignore[operator]
        status = rig.daemon.state(online=True)["basket"]
        assert status["state"] == "captured" and status["holds_lesion"]

        await rig.ok({"op": "estop", "source": "test"})
        await _state_is(rig, BasketState.FAULT)
        assert _basket(rig).machine.holds_lesion
        refused = await rig.command({"op": "basket.open"})
        assert not refused["ok"]
        assert _stage_usteps(rig) == pytest.approx(held_at, abs=1)  # still holding

        await rig.reset_and_wait_ready()
        await _state_is(rig, BasketState.CAPTURED)
        assert _stage_usteps(rig) == pytest.approx(held_at, abs=1)

        # The surgeon releases it and the lesion is gone: closing on nothing reaches closed.
        await rig.ok({"op": "basket.open"})
        await _state_is(rig, BasketState.OPEN)
        await rig.on_sim(lambda: rig.sim.usb.place_obstacle(None))
        await rig.ok({"op": "basket.close"})
        await _state_is(rig, BasketState.CLOSED)
        geometry = _basket(rig).machine.geometry
        assert _stage_usteps(rig) == pytest.approx(geometry.closed_usteps, abs=2)
        assert not _basket(rig).machine.holds_lesion

        # The open basket lies against the duct wall, and the host stalls (a blocked loop: GC,
        # swap, a loaded machine) while it closes: the Tic stops at the force limit on its own.
        await rig.ok({"op": "basket.open"})
        await _state_is(rig, BasketState.OPEN)
        wall = float(geometry.open_usteps)
        await rig.on_sim(lambda: rig.sim.usb.place_obstacle(wall))
        await rig.ok({"op": "basket.close"})
        time.sleep(0.45)  # noqa: ASYNC251 (the point: the daemon's loop stalls, the Tic goes on)
        await _state_is(rig, BasketState.CAPTURED)
        tic = rig.sim.usb.tic.sync()
        assert tic.physical_usteps == pytest.approx(wall, abs=1)
        assert tic.position_usteps - tic.physical_usteps <= geometry.force_limit_usteps + 1
        await asyncio.sleep(0.2)
        assert _stage_usteps(rig) == pytest.approx(wall, abs=1) and tic.velocity_usteps_s == 0

        await rig.ok({"op": "basket.retract"})
        await _state_is(rig, BasketState.RETRACTED)
    events = [e for e in read_journal(tmp_path / JOURNAL_FILE) if isinstance(e, BasketChanged)]
    steps = [e.to_state for e in events]
    expected = ["open", "captured", "fault", "captured", "open", "closed", "open", "captured"]
    found = iter(steps)
    assert all(step in found for step in expected), [(e.to_state, e.cause) for e in events]
    at_the_wall = [e for e in events if e.to_state == "captured"][-1]
    assert at_the_wall.at_force_limit, at_the_wall
    assert at_the_wall.error_usteps == geometry.force_limit_usteps, at_the_wall


LEFT_OUT_USTEPS = 1500.0


def _on_serial_with_an_incremental_encoder(profile: RigProfile) -> RigProfile:
    """The Tic on its TTL serial port (the simulator's pty), its encoder counting from its
    power-up. Replies may be late here: the simulator shares this process and its GIL, as the
    rig's loop-stall guard and watchdog limits in tests/system/inprocess.py say."""
    basket = profile.devices.basket
    assert basket is not None
    counting = basket.model_copy(
        update={
            "encoder_absolute": False,
            "transport": "serial",
            "baudrate": 115_200,
            "serial_reply_timeout_ms": 500,
        }
    )
    return profile.model_copy(
        update={"devices": profile.devices.model_copy(update={"basket": counting})}
    )


def _left_out_and_power_cycled(sim: RigSimulator) -> None:
    """The Tic powered up with the basket left deployed, its encoder counting from there."""
    sim.usb.power_cycle_tic(LEFT_OUT_USTEPS, encoder_absolute=False)


@pytest.mark.hazard("H25", "H18", "H17")
async def test_homing_refusals_a_fault_mid_close_and_the_tic_unplugged_mid_close(
    tmp_path: Path,
) -> None:
    async with inprocess_rig(
        tmp_path,
        before_daemon=_left_out_and_power_cycled,
        profile=_on_serial_with_an_incremental_encoder,
    ) as rig:
        assert rig.sim.usb.tic_serial is not None
        # Its position unknown at connect: nothing moves it but an asked-for homing.
        await rig.wait_ready()
        await _state_is(rig, BasketState.UNHOMED)
        reply = await rig.command({"op": "basket.open"})
        assert not reply["ok"] and "basket.home first" in reply["error"]["message"]  # type: ignore[index]
        await asyncio.sleep(0.2)
        assert _stage_usteps(rig) == pytest.approx(LEFT_OUT_USTEPS, abs=1)
        await rig.ok({"op": "basket.home"})
        await _state_is(rig, BasketState.RETRACTED)
        assert _stage_usteps(rig) == pytest.approx(0.0, abs=2)
        assert not rig.sim.usb.tic.sync().homing

        await rig.ok({"op": "basket.open"})
        await _state_is(rig, BasketState.OPEN)

        rig.daemon.interlock.set_video_live(False)  # the camera would say so (test_camera)
        reply = await rig.command({"op": "basket.close"})
        assert not reply["ok"] and "no live video" in reply["error"]["message"]  # type: ignore[index]
        rig.daemon.interlock.set_video_live(True)

        observer = await rig.daemon.dispatcher.handle(
            json.dumps({"op": "basket.close"}).encode(), role=Role.OBSERVER, client="obs"
        )
        assert observer["error"]["code"] == "denied"

        # Closing on nothing (the lesion gone): a fault mid-close halts it where it is.
        await rig.on_sim(lambda: rig.sim.usb.place_obstacle(None))
        await rig.ok({"op": "basket.close"})
        await rig.wait_for(lambda: _stage_usteps(rig) > 3000, 10.0, "closing")
        rig.daemon.interlock.trip(StopCause.INTERNAL_FAULT, "a fault in the test", mode="idle")
        await _state_is(rig, BasketState.FAULT)
        halted_at = _stage_usteps(rig)
        reply = await rig.command({"op": "basket.close"})
        assert not reply["ok"]
        await asyncio.sleep(0.5)
        assert _stage_usteps(rig) < halted_at + 200  # halted, not run on to closed (8000)
        assert _stage_usteps(rig) < 7000

        # Reset: halted part-way and empty is `closed`. Then the Tic unplugged mid-close: its
        # command timeout holds it, the daemon reports it, and after the replug the basket's
        # state is known again without a move.
        await rig.reset_and_wait_ready()
        await _state_is(rig, BasketState.CLOSED)
        await rig.ok({"op": "basket.open"})
        await _state_is(rig, BasketState.OPEN)
        await rig.ok({"op": "basket.close"})
        await rig.wait_for(lambda: _stage_usteps(rig) > 2500, 10.0, "closing")
        await rig.on_sim(lambda: rig.sim.handle({"op": "unplug", "device": "basket"}))
        await _state_is(rig, BasketState.FAULT)
        assert not rig.daemon.state(online=True)["devices"]["basket"]
        await rig.wait_for(lambda: rig.sim.usb.tic.sync().velocity_usteps_s == 0, 3.0, "held")
        held_at = _stage_usteps(rig)
        assert held_at < 7000, "the Tic's own timeout stopped it short of closed"
        await rig.on_sim(lambda: rig.sim.handle({"op": "replug", "device": "basket"}))
        await _state_is(rig, BasketState.CLOSED)
        assert rig.daemon.state(online=True)["devices"]["basket"]
        await asyncio.sleep(0.3)
        assert _stage_usteps(rig) == pytest.approx(held_at, abs=1)
