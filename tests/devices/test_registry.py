"""The device registry and the one supervisor every device runs under."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import pytest

from drivers.clock import REAL_CLOCK
from drivers.transport.linkstats import LinkStats
from drivers.transport.serial import LinkClosedError
from rig.api.service import BrokerAddress
from rig.config import DEFAULT_PROFILE, RigProfile, load_profile
from rig.daemon import RigDaemon
from rig.devices.board import BoardDevice
from rig.devices.contract import Device, DeviceContext, Task
from rig.devices.pump import PumpDevice
from rig.devices.registry import DeviceRegistry
from rig.devices.supervisor import supervise
from rig.events.models import DeviceLinkChanged, EventBase
from rig.safety.interlock import ActuatorSlots
from tests.support.ports import unused_ports

PROFILE = load_profile(DEFAULT_PROFILE)
FLUID_ONLY = PROFILE.model_copy(
    update={"devices": PROFILE.devices.model_copy(update={"pedal": None, "basket": None})}
)
"""A rig with the fluid path only: the pump and the board."""
BROKER = BrokerAddress("127.0.0.1", 1)


def _context(events: list[EventBase]) -> DeviceContext:
    return _context_of(FLUID_ONLY, events)


def _context_of(profile: RigProfile, events: list[EventBase] | None = None) -> DeviceContext:
    def fault(subsystem: str, exc: BaseException) -> None:
        raise AssertionError(f"{subsystem}: {exc!r}")

    record = events.append if events is not None else (lambda _: None)
    return DeviceContext(profile, REAL_CLOCK, record, lambda: None, fault)


def test_the_registry_builds_one_device_per_section_of_the_profile() -> None:
    ports = unused_ports(PROFILE)
    assert set(ports) == {"pump", "board", "pedal", "basket"}
    daemon = RigDaemon(PROFILE, ports, BROKER)
    assert [device.name for device in daemon.devices] == list(PROFILE.devices.sections())
    assert isinstance(daemon.devices.one(PumpDevice), PumpDevice)
    assert daemon.devices.one(BoardDevice) is daemon.devices["board"]
    assert set(daemon.state(online=True)["devices"]) == set(PROFILE.devices.sections())
    assert set(daemon.telemetry()["links"]) == set(PROFILE.devices.sections())


def test_a_rig_without_the_optional_devices_builds() -> None:
    daemon = RigDaemon(FLUID_ONLY, {"pump": "a", "board": "b"}, BROKER)
    assert [device.name for device in daemon.devices] == ["pump", "board"]


def test_a_port_a_device_cannot_open_is_refused_by_name() -> None:
    ports = {"pump": "a", "board": "b", "pedal": "/dev/ttyUSB0"}
    with pytest.raises(ValueError, match=r"devices\.pedal: port '/dev/ttyUSB0': expected usb:"):
        DeviceRegistry(ports, _context_of(PROFILE))


def test_a_port_for_no_device_or_a_device_without_a_port_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="camera: not devices of this profile"):
        DeviceRegistry({"pump": "a", "board": "b", "camera": "c"}, _context([]))
    with pytest.raises(ValueError, match=r"devices\.board: no port resolved"):
        DeviceRegistry({"pump": "a"}, _context([]))


def test_a_driver_goes_to_the_interlock_once() -> None:
    registry = DeviceRegistry({"pump": "a", "board": "b"}, _context([]))
    registry.build_interlock()
    with pytest.raises(RuntimeError, match="already handed"):
        registry["pump"].provide(ActuatorSlots())


def test_an_interlock_needs_the_pump_and_the_relay() -> None:
    with pytest.raises(ValueError, match="no device provides the interlock's pump and relay"):
        ActuatorSlots().build()


class _FlakyLink:
    """A link that refuses `failures` connects, then connects and stays up until dropped."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0
        self.closes = 0
        self.stats = LinkStats()
        self._closed = asyncio.Event()

    @property
    def url(self) -> str:
        return "flaky://1"

    async def connect(self) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise LinkClosedError("no answer")
        self._closed.clear()

    async def close(self) -> None:
        self.closes += 1
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()


class _Gadget(Device):
    name = "pump"  # a name the interlock's facts know
    connect_errors = (LinkClosedError,)

    def __init__(self, context: DeviceContext, link: _FlakyLink) -> None:
        super().__init__(context)
        self._link = link
        self.hooks: list[str] = []

    @property
    def link(self) -> _FlakyLink:
        return self._link

    def provide(self, slots: ActuatorSlots) -> None:
        raise AssertionError("not used")

    async def configure(self) -> None:
        self.hooks.append("configure")

    async def on_up(self) -> None:
        self.hooks.append("up")

    def on_lost(self) -> None:
        self.hooks.append(f"lost, connected={self.connected}")

    def tasks(self) -> Sequence[Task]:
        return ()


async def _until(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(2.0):
        while not predicate():  # noqa: ASYNC110 - state of the code under test, polled
            await asyncio.sleep(0.005)


async def test_the_supervisor_retries_reports_the_link_and_hands_the_loss_to_the_device() -> None:
    events: list[EventBase] = []
    context = _context(events)
    registry = DeviceRegistry({"pump": "a", "board": "b"}, context)
    interlock = registry.build_interlock()
    context.bind(interlock, object())  # type: ignore[arg-type]  # the hooks here need no controller
    link = _FlakyLink(failures=2)
    gadget = _Gadget(context, link)
    task = asyncio.create_task(supervise(gadget))
    try:
        await _until(lambda: interlock.link_up("pump"))
        assert link.attempts == 3 and link.closes == 2  # each failed connect is closed again
        assert gadget.hooks == ["configure", "up"] and gadget.connections == 1
        assert gadget.connected
        await link.close()
        await _until(lambda: gadget.connections == 2)  # the loss is handled, and it comes back
        assert gadget.hooks == ["configure", "up", "lost, connected=False", "configure", "up"]
        links = [(e.device, e.up) for e in events if isinstance(e, DeviceLinkChanged)]
        assert links == [("pump", True), ("pump", False), ("pump", True)]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
