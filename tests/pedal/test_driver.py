"""The pedal driver through pyusb's real API into emulated pedals on the simulated USB backend."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
import usb.core
import usb.util

from drivers.pedal.driver import FootPedal
from drivers.pedal.reports import PCSENSOR_IDS, VEC_PRODUCT_ID, VEC_VENDOR_ID, Pedal, PedalFormat
from drivers.pedal.tracker import (
    PedalEvent,
    PedalPressed,
    PedalReleased,
    PedalStuck,
    PedalStuckCleared,
    PedalTapped,
    PedalTiming,
    PedalUnplugged,
    ReleaseCause,
)
from drivers.sim.usb.backend import SimUsbBackend
from drivers.sim.usb.pedals import ENDPOINT_IN_1, SimPcsensorPedal, SimVecPedal
from drivers.transport.serial import LinkClosedError
from drivers.transport.usb import UsbDeviceMatch

TIMING = PedalTiming(press_debounce_s=0.02, tap_max_s=0.15, stuck_after_s=0.4)


@dataclass
class Bench:
    bus: SimUsbBackend
    device: SimVecPedal | SimPcsensorPedal
    pedal: FootPedal
    events: list[PedalEvent] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    async def wait_for(self, kind: type, timeout_s: float = 2.0) -> PedalEvent:
        async with asyncio.timeout(timeout_s):
            while True:
                for event in self.events:
                    if isinstance(event, kind):
                        return event
                await asyncio.sleep(0.005)

    def kinds(self) -> list[type]:
        return [type(e) for e in self.events]


def kernel_driver_active(bus: SimUsbBackend, vendor_id: int) -> bool:
    dev = usb.core.find(idVendor=vendor_id, backend=bus)
    assert dev is not None
    active = bool(dev.is_kernel_driver_active(0))
    usb.util.dispose_resources(dev)
    return active


@contextlib.asynccontextmanager
async def bench(
    make: Callable[[], SimVecPedal | SimPcsensorPedal], fmt: PedalFormat
) -> AsyncIterator[Bench]:
    bus = SimUsbBackend()
    device = make()
    bus.attach(device)
    pedal = FootPedal(fmt, backend=bus, timing=TIMING)
    await pedal.connect()
    made = Bench(bus, device, pedal)
    made.task = asyncio.create_task(pedal.run(made.events.append))
    try:
        yield made
    finally:
        made.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, LinkClosedError):
            await made.task
        await pedal.close()


@pytest.fixture
async def vec() -> AsyncIterator[Bench]:
    async with bench(SimVecPedal, PedalFormat.VEC) as made:
        yield made


@pytest.fixture
async def pcsensor() -> AsyncIterator[Bench]:
    async with bench(SimPcsensorPedal, PedalFormat.PCSENSOR) as made:
        yield made


async def test_connect_detaches_the_kernel_driver_and_close_gives_it_back() -> None:
    bus = SimUsbBackend()
    bus.attach(SimVecPedal())
    assert kernel_driver_active(bus, VEC_VENDOR_ID)
    pedal = FootPedal(PedalFormat.VEC, backend=bus, timing=TIMING)
    await pedal.connect()
    assert not kernel_driver_active(bus, VEC_VENDOR_ID)
    assert pedal.link.interrupt_in == (ENDPOINT_IN_1, 8)
    await pedal.close()
    assert kernel_driver_active(bus, VEC_VENDOR_ID)


async def test_vec_press_and_release_are_events_in_order(vec: Bench) -> None:
    vec.device.press(Pedal.RIGHT)
    pressed = await vec.wait_for(PedalPressed)
    assert pressed == PedalPressed(Pedal.RIGHT, pressed.at_s)
    assert vec.pedal.pressed == {Pedal.RIGHT}
    await asyncio.sleep(0.2)
    vec.device.release(Pedal.RIGHT)
    released = await vec.wait_for(PedalReleased)
    assert isinstance(released, PedalReleased)
    assert released.cause is ReleaseCause.RELEASED and released.held_s >= 0.2
    assert vec.kinds() == [PedalPressed, PedalReleased]


async def test_pcsensor_keys_are_pedals(pcsensor: Bench) -> None:
    pcsensor.device.press(Pedal.LEFT)
    assert await pcsensor.wait_for(PedalPressed) == PedalPressed(
        Pedal.LEFT, pcsensor.events[0].at_s
    )


async def test_a_bouncing_contact_is_no_press(vec: Bench) -> None:
    vec.device.bounce(Pedal.LEFT, times=4)
    await asyncio.sleep(0.1)
    assert vec.events == []
    assert vec.pedal.reports == 8


async def test_a_quick_tap_is_reported_after_its_release(vec: Bench) -> None:
    vec.device.press(Pedal.MIDDLE)
    await vec.wait_for(PedalPressed)
    vec.device.release(Pedal.MIDDLE)
    tapped = await vec.wait_for(PedalTapped)
    assert isinstance(tapped, PedalTapped) and tapped.held_s <= TIMING.tap_max_s
    assert vec.kinds() == [PedalPressed, PedalReleased, PedalTapped]


async def test_a_pcsensor_key_that_never_releases_is_a_stuck_pedal(pcsensor: Bench) -> None:
    device = pcsensor.device
    assert isinstance(device, SimPcsensorPedal)
    device.stick(Pedal.RIGHT)
    await pcsensor.wait_for(PedalPressed)
    pcsensor.device.release(Pedal.RIGHT)  # the foot is off; the contact still says down
    stuck = await pcsensor.wait_for(PedalStuck)
    assert isinstance(stuck, PedalStuck) and stuck.held_s >= TIMING.stuck_after_s
    assert pcsensor.kinds() == [PedalPressed, PedalStuck, PedalReleased]
    released = pcsensor.events[2]
    assert isinstance(released, PedalReleased) and released.cause is ReleaseCause.STUCK
    assert pcsensor.pedal.pressed == frozenset()
    device.unstick(Pedal.RIGHT)
    await pcsensor.wait_for(PedalStuckCleared)


async def test_unplugging_a_pressed_pedal_releases_it_and_run_raises(vec: Bench) -> None:
    vec.device.press(Pedal.LEFT)
    await vec.wait_for(PedalPressed)
    vec.bus.unplug(vec.device)
    assert vec.task is not None
    with pytest.raises(LinkClosedError):
        await asyncio.wait_for(vec.task, 1.0)
    assert vec.kinds() == [PedalPressed, PedalReleased, PedalUnplugged]
    released = vec.events[1]
    assert isinstance(released, PedalReleased) and released.cause is ReleaseCause.UNPLUGGED
    assert vec.pedal.pressed == frozenset()


async def test_after_a_replug_the_pedal_reconnects_and_reports_again(vec: Bench) -> None:
    vec.bus.unplug(vec.device)
    assert vec.task is not None
    with pytest.raises(LinkClosedError):
        await asyncio.wait_for(vec.task, 1.0)
    vec.bus.plug(vec.device)
    await vec.pedal.close()
    await vec.pedal.connect()
    assert vec.pedal.stats.reconnects == 1
    vec.events.clear()
    vec.task = asyncio.create_task(vec.pedal.run(vec.events.append))
    vec.device.press(Pedal.LEFT)
    await vec.wait_for(PedalPressed)


async def test_an_unreadable_report_is_counted_and_changes_nothing(vec: Bench) -> None:
    vec.device.queue_report(ENDPOINT_IN_1, b"\xff\xff")
    vec.device.press(Pedal.LEFT)
    await vec.wait_for(PedalPressed)
    assert vec.pedal.stats.invalid_bytes == 2
    assert vec.kinds() == [PedalPressed]


async def test_a_pcsensor_of_another_vendor_is_found_by_its_ids() -> None:
    vendor_id, product_id = PCSENSOR_IDS[2]
    bus = SimUsbBackend()
    bus.attach(SimPcsensorPedal(ids=(vendor_id, product_id)))
    pedal = FootPedal(
        PedalFormat.PCSENSOR, match=UsbDeviceMatch(vendor_id, (product_id,)), backend=bus
    )
    await pedal.connect()
    assert pedal.link.product_id == product_id
    await pedal.close()


async def test_no_pedal_attached_is_a_clear_error() -> None:
    pedal = FootPedal(PedalFormat.VEC, backend=SimUsbBackend())
    with pytest.raises(
        LinkClosedError, match=f"{VEC_VENDOR_ID:04x}:{VEC_PRODUCT_ID:04x} is not attached"
    ):
        await pedal.connect()
