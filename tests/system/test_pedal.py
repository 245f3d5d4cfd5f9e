"""The foot pedal on the simulated rig: an emulated VEC IN-USB-2 on the simulator's USB bus,
read by the daemon's pedal device through pyusb and the bus's socket, its requests through the
one dispatcher to the emulated pump over its pseudo-terminal.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from rig.config import RigProfile
from rig.events.journal import JOURNAL_FILE, read_journal
from rig.events.models import CommandAudit, EventBase, PedalChanged
from rig.fluid.events import StopCause
from rig.safety.states import RigState
from tests.system.inprocess import InProcessRig, inprocess_rig

pytestmark = [pytest.mark.system, pytest.mark.timeout(120)]


async def _pedal(rig: InProcessRig, action: str, pedal: str = "left") -> None:
    usb = rig.sim.usb
    await rig.on_sim(lambda: usb.press(action, pedal))


async def _ready_with_pedal(rig: InProcessRig) -> None:
    await rig.wait_ready()
    await rig.wait_for(lambda: rig.daemon.devices["pedal"].connected, 10.0, "pedal connected")
    await rig.prime()


def _events(tmp_path: Path) -> list[EventBase]:
    return read_journal(tmp_path / JOURNAL_FILE)


async def _journaled(rig: InProcessRig, tmp_path: Path, what: str, n: int) -> list[EventBase]:
    """The journal once it holds at least `n` events of which `what` says they count."""
    counted: list[EventBase] = []

    def enough() -> bool:
        nonlocal counted
        counted = [e for e in _events(tmp_path) if _kind(e) == what]
        return len(counted) >= n

    await rig.wait_for(enough, 3.0, f"{n} {what} events journaled")
    return counted


def _kind(event: EventBase) -> str:
    if isinstance(event, CommandAudit) and event.client == "pedal":
        return "pedal command"
    return event.kind


@pytest.mark.hazard("H15")
async def test_the_irrigate_pedal_is_a_dead_man_and_its_requests_are_audited(
    tmp_path: Path,
) -> None:
    async with inprocess_rig(tmp_path) as rig:
        await _ready_with_pedal(rig)
        await _pedal(rig, "press")
        await rig.wait_for(lambda: rig.sim.pump.running, 3.0, "irrigating")
        assert rig.daemon.controller.setpoint.flow_ml_min == pytest.approx(1.0)
        await _pedal(rig, "release")
        await rig.wait_for(lambda: not rig.sim.pump.running, 1.0, "the pump stopped")
        assert rig.stops[-1].cause is StopCause.OPERATOR
        assert rig.daemon.interlock.state is RigState.READY
        audits = await _journaled(rig, tmp_path, "pedal command", 2)
        assert [(a.op, a.role, a.ok) for a in audits if isinstance(a, CommandAudit)] == [
            ("fluid.irrigate", "surgeon", True),
            ("fluid.stop", "surgeon", True),
        ]
        changes = await _journaled(rig, tmp_path, "pedal", 2)
        assert [e.change for e in changes if isinstance(e, PedalChanged)][:2] == [
            "pressed",
            "released",
        ]


@pytest.mark.hazard("H15")
async def test_an_unplugged_pedal_counts_as_released_and_is_known_again_after_a_replug(
    tmp_path: Path,
) -> None:
    async with inprocess_rig(tmp_path) as rig:
        await _ready_with_pedal(rig)
        await _pedal(rig, "press")
        await rig.wait_for(lambda: rig.sim.pump.running, 3.0, "irrigating")
        usb = rig.sim.usb
        await rig.on_sim(lambda: usb.unplug("pedal"))
        await rig.wait_for(lambda: not rig.sim.pump.running, 1.0, "the pump stopped")
        await rig.wait_for(lambda: not rig.daemon.devices["pedal"].connected, 2.0, "pedal down")
        # The foot comes off while the cable is out; plugged back, the pedal starts nothing.
        await _pedal(rig, "release")
        await rig.on_sim(lambda: usb.plug("pedal"))
        await rig.wait_for(lambda: rig.daemon.devices["pedal"].connected, 10.0, "pedal back")
        await asyncio.sleep(0.3)
        assert not rig.sim.pump.running
        changes = [e for e in await _journaled(rig, tmp_path, "pedal", 3)]
        released = [e for e in changes if isinstance(e, PedalChanged) and e.change == "released"]
        assert released[0].cause == "unplugged"
        assert any(isinstance(e, PedalChanged) and e.change == "unplugged" for e in changes)
        # and it works again
        await _pedal(rig, "press")
        await rig.wait_for(lambda: rig.sim.pump.running, 3.0, "irrigating again")
        await _pedal(rig, "release")
        await rig.wait_for(lambda: not rig.sim.pump.running, 1.0, "stopped again")


@pytest.mark.hazard("H15")
async def test_a_pedal_held_through_a_stop_starts_nothing_until_pressed_again(
    tmp_path: Path,
) -> None:
    async with inprocess_rig(tmp_path) as rig:
        await _ready_with_pedal(rig)
        await _pedal(rig, "press")
        await rig.wait_for(lambda: rig.sim.pump.running, 3.0, "irrigating")
        await rig.ok({"op": "fluid.stop"})  # the console's stop, the pedal still held
        await rig.wait_for(lambda: not rig.sim.pump.running, 1.0, "stopped")
        await asyncio.sleep(0.5)
        assert not rig.sim.pump.running, "a held pedal restarted the fluid by itself"
        await _pedal(rig, "release")
        await _pedal(rig, "press")
        await rig.wait_for(lambda: rig.sim.pump.running, 3.0, "a new press irrigates")
        await _pedal(rig, "release")


def _stuck_after_10_s(profile: RigProfile) -> RigProfile:
    devices = profile.devices
    assert devices.pedal is not None
    pedal = devices.pedal.model_copy(update={"stuck_after_s": 10.0})
    return profile.model_copy(update={"devices": devices.model_copy(update={"pedal": pedal})})


@pytest.mark.hazard("H15")
async def test_a_stuck_irrigate_pedal_stops_the_fluid_and_latches_a_fault(tmp_path: Path) -> None:
    async with inprocess_rig(tmp_path, profile=_stuck_after_10_s) as rig:
        await _ready_with_pedal(rig)
        await _pedal(rig, "press")
        await rig.wait_for(lambda: rig.sim.pump.running, 3.0, "irrigating")
        # The contact stays closed whatever the foot does: 10 s later the rig stops.
        await rig.wait_for(lambda: not rig.sim.pump.running, 12.0, "stopped as stuck")
        latched = rig.daemon.interlock.latched
        assert latched is not None and latched.cause is StopCause.PEDAL_STUCK, latched
        # Still held after the reset: nothing starts until it is really let go and pressed.
        await rig.reset_and_wait_ready()
        await asyncio.sleep(0.5)
        assert not rig.sim.pump.running
        await _pedal(rig, "release")
        await _pedal(rig, "press")
        await rig.wait_for(lambda: rig.sim.pump.running, 3.0, "irrigating after a real press")
        await _pedal(rig, "release")
