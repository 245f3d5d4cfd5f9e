"""What every device of the rig is to the daemon: the `Device` contract and its context.

A device module (rig/devices/<name>.py) builds its driver from its profile section
(rig/devices/<name>_config.py), hands the driver's actuators to the interlock (`provide`), and
keeps only the link facet (rig/safety/links.py) for itself. One generic supervisor
(rig/devices/supervisor.py) runs every device the same way: connect, configure, watch the link,
report a loss, reconnect with back-off. What differs between devices is in the hooks below.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from drivers.clock import Clock
from drivers.transport.linkstats import LinkStats
from drivers.transport.mqtt import JsonObject
from rig.api.roles import Role
from rig.events.models import EventBase
from rig.fluid.events import Figure, StopCause

if TYPE_CHECKING:
    from rig.config import RigProfile
    from rig.fluid.controller import FluidController
    from rig.safety.interlock import ActuatorSlots, Interlock

Task = tuple[str, Callable[[], Awaitable[None]]]
"""A named long-running task, run under fault containment (rig/safety/containment.py)."""


class ForwardingError(Exception):
    """A station forwarded a device's state and the device does not take it from there."""


@dataclass
class ResetNotes:
    """What the devices tell each other across an operator reset."""

    pump_power_restored: bool = False
    """The reset closes the pump's power relay, which was open: the pump reboots."""


class Dispatch(Protocol):
    """The rig's one command dispatcher (rig/api/dispatch.py, CommandDispatcher.handle)."""

    def __call__(
        self, payload: bytes, *, role: Role, client: str | None
    ) -> Awaitable[JsonObject]: ...


class DeviceLink(Protocol):
    """What the supervisor needs of a device's link (a facet of rig/safety/links.py)."""

    @property
    def url(self) -> str: ...
    @property
    def stats(self) -> LinkStats: ...
    async def connect(self) -> None: ...
    async def close(self) -> None: ...
    async def wait_closed(self) -> None: ...


@dataclass
class DeviceContext:
    """What a device may reach of the rig. The interlock and the fluid controller are built
    after the devices (they take the devices' actuators), so they are bound afterwards."""

    profile: RigProfile
    clock: Clock
    record: Callable[[EventBase], object]
    """Record an event: the journal, then the API's events topic, and the daemon's log."""
    state_changed: Callable[[], None]
    on_fault: Callable[[str, BaseException], None]
    """An exception nothing expected, in a device callback: a latched INTERNAL_FAULT."""
    _interlock: Interlock | None = field(default=None, repr=False)
    _controller: FluidController | None = field(default=None, repr=False)
    _dispatch: Dispatch | None = field(default=None, repr=False)

    def bind(self, interlock: Interlock, controller: FluidController) -> None:
        self._interlock, self._controller = interlock, controller

    def bind_dispatcher(self, dispatch: Dispatch) -> None:
        self._dispatch = dispatch

    @property
    def dispatch(self) -> Dispatch:
        """A device that commands the rig (the foot pedal) asks the one dispatcher, as every
        client does: the same roles, control of the rig, interlock and audit."""
        if self._dispatch is None:
            raise RuntimeError("the device context is not bound to a dispatcher yet")
        return self._dispatch

    @property
    def interlock(self) -> Interlock:
        if self._interlock is None:
            raise RuntimeError("the device context is not bound to an interlock yet")
        return self._interlock

    @property
    def controller(self) -> FluidController:
        if self._controller is None:
            raise RuntimeError("the device context is not bound to a fluid controller yet")
        return self._controller

    def trip(
        self, cause: StopCause, message: str, figures: dict[str, Figure] | None = None
    ) -> None:
        """Stop the fluid and latch `cause`, whatever moves."""
        self.interlock.trip(cause, message, mode=self.controller.setpoint.mode, figures=figures)

    def trip_if_moving(self, cause: StopCause, message: str) -> None:
        """Latch `cause` if fluid was moving: a link lost at rest is not a fault, only a wait."""
        if self.controller.pump_running:
            self.trip(cause, message)


class Device(abc.ABC):
    """One device of the rig. Subclasses set `name` (its `[devices.<name>]` section) and
    `connect_errors` (what a failed connect or configure raises: the supervisor retries)."""

    name: str
    connect_errors: tuple[type[Exception], ...]

    def __init__(self, context: DeviceContext) -> None:
        self.context = context
        self.connections = 0
        """How many times the supervisor has brought the link up since start."""

    @property
    @abc.abstractmethod
    def link(self) -> DeviceLink:
        """The device's link: connect, close, statistics; nothing that moves it."""

    @abc.abstractmethod
    def provide(self, slots: ActuatorSlots) -> None:
        """Hand the driver's actuators (and its emergency stop) to the interlock's slots."""

    async def configure(self) -> None:  # noqa: B027 (an optional hook)
        """Just connected, not yet reported up: configure it (through the interlock) and
        check what it reports. An exception in `connect_errors` closes the link and retries."""

    async def on_up(self) -> None:  # noqa: B027 (an optional hook)
        """The link is reported up (the interlock's facts say so)."""

    def on_lost(self) -> None:  # noqa: B027 (an optional hook)
        """The link went down (the interlock already knows)."""

    def tasks(self) -> Sequence[Task]:
        """Long-running tasks of the device besides its supervisor (a heartbeat, say)."""
        return ()

    async def before_reset(self, notes: ResetNotes) -> None:  # noqa: B027 (an optional hook)
        """An operator reset is about to clear the latched fault."""

    async def after_reset(self, notes: ResetNotes) -> None:  # noqa: B027 (an optional hook)
        """The reset has cleared the fault."""

    def forwarded(self, role: Role, report: object) -> JsonObject:
        """A station forwards this device's state (a device plugged into its console): the
        reply to that station. Only a device that can be plugged into a console has any."""
        del report
        raise ForwardingError(
            f"devices.{self.name} is not plugged into a console: {role} cannot forward it"
        )

    @property
    def connected(self) -> bool:
        """The link is up and the device configured: the state's `devices` object."""
        return self.context.interlock.link_up(self.name)
