"""The basket device's own logic around the interlock, with a recording Tic behind it (the Tic's
bytes: tests/tic; the whole rig: tests/system/test_basket.py)."""

from __future__ import annotations

import asyncio

from drivers.clock import REAL_CLOCK
from rig.config import DEFAULT_PROFILE, load_profile
from rig.devices.basket import BasketDevice
from rig.devices.basket_machine import BasketState, Reading
from rig.devices.contract import DeviceContext
from rig.events.models import EventBase
from tests.safety.test_basket_interlock import RecordingTic, make


class GatedTic(RecordingTic):
    """A target held on its way to the Tic (queued behind the link's lock) until `gate` opens."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = asyncio.Event()
        self.gate = asyncio.Event()

    async def set_target_position(self, position_usteps: int) -> None:
        self.calls.append(f"target {position_usteps}")
        self.sent.set()
        await self.gate.wait()


def _open_basket(tic: RecordingTic) -> BasketDevice:
    profile = load_profile(DEFAULT_PROFILE)
    assert profile.devices.basket is not None
    interlock, _ = make(tic=tic)  # in the interlock's slot, as the device's provide() puts it

    def fault(subsystem: str, exc: BaseException) -> None:
        raise AssertionError(f"{subsystem}: {exc!r}")

    events: list[EventBase] = []
    context = DeviceContext(
        profile, REAL_CLOCK, events.append, lambda: None, fault, _interlock=interlock
    )
    device = BasketDevice(profile.devices.basket, "usb-sim:/nowhere", context)
    open_at = profile.devices.basket.open_usteps
    device.machine.recovered(Reading(open_at, open_at, 0, 0), "test", 0.0)
    assert device.machine.state is BasketState.OPEN
    return device


async def test_a_halt_that_crosses_a_close_on_its_way_halts_it_again() -> None:
    tic = GatedTic()
    device = _open_basket(tic)
    closing = asyncio.create_task(device.command("close"))
    await tic.sent.wait()
    await device.command("halt")  # the basket pedal let go: ahead of the queued target
    tic.gate.set()
    await closing
    assert tic.calls[-3:] == ["target 2400", "halt", "halt"], tic.calls
    assert device.machine.state is BasketState.CLOSED
