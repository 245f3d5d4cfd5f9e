"""The surgeon's foot pedal as a device of the rig.

Its section is `[devices.pedal]` (rig/devices/pedal_config.py). The pedal moves nothing: it asks,
through the one dispatcher, as the surgeon's station (role `surgeon`, client `pedal`), so its
requests meet the same roles, control of the rig, interlock and audit as the console's.

The irrigate pedal is a dead-man: a press asks for irrigation, and every release (let go,
stuck, unplugged) asks for a stop, which is never refused. A pedal held so long it must be stuck
(a bad contact) is released by the tracker; if fluid was moving, that is a latched
`pedal_stuck` fault (H15), and the pedal counts as released until it has really been let go, so
it cannot start anything again by itself. Only a new press (an edge) starts irrigation: a pedal
held down through a stop, a fault or a reset starts nothing. The basket pedal is a dead-man the
same way: a press asks basket.close, every release basket.halt (the basket holds where it is).

Where the pedal is plugged in is its port. On the rig (`{ usb = ... }`, or `{ sim = "pedal" }`
on the simulator's bus) the daemon reads its reports in the pedal driver's worker thread. At a
console (`{ console = "surgeon" }`) that console reads it and forwards the pressed pedals with
every change and as a heartbeat (the `pedal.report` op, at least every third of
`devices.pedal.forward_timeout_ms`); the daemon runs the same tracker on what arrives, and a
stream silent for `forward_timeout_ms` counts as unplugged: every pressed pedal released. Either
way the events go through a queue to one task, which dispatches them in order (a press and its
release are never swapped).
"""

from __future__ import annotations

import abc
import asyncio
import json
import logging
from collections.abc import Sequence

from drivers.clock import Clock
from drivers.pedal.driver import FootPedal, default_match
from drivers.pedal.reports import Pedal, PedalFormat
from drivers.pedal.tracker import (
    PedalEvent,
    PedalPressed,
    PedalReleased,
    PedalStuck,
    PedalStuckCleared,
    PedalTapped,
    PedalTracker,
    PedalUnplugged,
    ReleaseCause,
)
from drivers.transport.linkstats import LinkStats
from drivers.transport.mqtt import JsonObject
from drivers.transport.serial import LinkClosedError
from drivers.transport.usb import UsbTimeoutError, UsbTransferError
from rig.api.commands import PedalReport
from rig.api.roles import Role
from rig.devices.contract import Device, DeviceContext, ForwardingError, Task
from rig.devices.pedal_config import PedalAction, PedalDeviceConfig
from rig.devices.usb_port import CONSOLE_PREFIX, UsbPortAddress
from rig.events.models import PedalChanged
from rig.fluid.events import StopCause
from rig.safety.interlock import ActuatorSlots

log = logging.getLogger(__name__)

CLIENT = "pedal"
"""The client id the pedal's requests carry in the audit trail."""


class PedalDevice(Device):
    """What every pedal does with its events, wherever it is plugged in."""

    name = "pedal"

    def __init__(self, config: PedalDeviceConfig, context: DeviceContext) -> None:
        super().__init__(context)
        self.config = config
        self._events: asyncio.Queue[PedalEvent] = asyncio.Queue()

    def provide(self, slots: ActuatorSlots) -> None:
        """Nothing: the pedal moves no actuator, it asks the dispatcher."""

    def tasks(self) -> Sequence[Task]:
        return [*self._input_tasks(), ("pedal requests", self._dispatch_events)]

    @abc.abstractmethod
    def _input_tasks(self) -> Sequence[Task]:
        """The tasks that turn the pedal's input into events on the queue."""

    def _emit(self, events: list[PedalEvent]) -> None:
        for event in events:
            self._events.put_nowait(event)

    async def _dispatch_events(self) -> None:
        while True:
            event = await self._events.get()
            await self.handle(event)

    async def handle(self, event: PedalEvent) -> None:
        """One pedal event: its request first (a stop must not wait for the record), then
        the record."""
        match event:
            case PedalPressed(pedal=pedal):
                action = self.config.actions.get(pedal, PedalAction.NONE)
                if action is PedalAction.IRRIGATE:
                    await self._ask(
                        {"op": "fluid.irrigate", "flow_ml_min": self.config.irrigate_flow_ml_min}
                    )
                elif action is PedalAction.STOP:
                    await self._ask({"op": "fluid.stop"})
                elif action is PedalAction.BASKET:
                    await self._ask({"op": "basket.close"})
                self.context.record(PedalChanged(change="pressed", pedal=pedal.value))
            case PedalReleased(pedal=pedal, cause=cause, held_s=held_s):
                if self.config.actions.get(pedal) is PedalAction.IRRIGATE:
                    self._dead_man_released(cause, held_s)
                    await self._ask({"op": "fluid.stop"})
                elif self.config.actions.get(pedal) is PedalAction.BASKET:
                    await self._ask({"op": "basket.halt"})
                self.context.record(
                    PedalChanged(
                        change="released",
                        pedal=pedal.value,
                        cause=cause.value,
                        held_s=round(held_s, 3),
                    )
                )
            case PedalTapped(pedal=pedal, held_s=held_s):
                self.context.record(
                    PedalChanged(change="tapped", pedal=pedal.value, held_s=round(held_s, 3))
                )
            case PedalStuck(pedal=pedal, held_s=held_s):
                self.context.record(
                    PedalChanged(change="stuck", pedal=pedal.value, held_s=round(held_s, 3))
                )
            case PedalStuckCleared(pedal=pedal):
                self.context.record(PedalChanged(change="stuck_cleared", pedal=pedal.value))
            case PedalUnplugged():
                self.context.record(PedalChanged(change="unplugged"))

    def _dead_man_released(self, cause: ReleaseCause, held_s: float) -> None:
        """A stuck dead-man pedal while fluid moved is a fault someone must see (H15)."""
        if cause is ReleaseCause.STUCK and self.context.controller.pump_running:
            self.context.trip(
                StopCause.PEDAL_STUCK,
                f"the irrigate pedal was held {held_s:.0f} s (devices.pedal.stuck_after_s = "
                f"{self.config.stuck_after_s:g} s): stuck?",
                figures={"held_s": round(held_s, 3), "stuck_after_s": self.config.stuck_after_s},
            )

    async def _ask(self, request: dict[str, object]) -> None:
        reply = await self.context.dispatch(
            json.dumps(request).encode(), role=Role.SURGEON, client=CLIENT
        )
        if not reply.get("ok"):
            log.info("pedal: %s refused: %s", request["op"], reply.get("error"))


def foot_pedal(config: PedalDeviceConfig, port: str, clock: Clock) -> FootPedal:
    """The pedal's driver for `port` (`usb:...` or `usb-sim:SOCKET`, rig/devices/usb_port.py),
    as its section describes it: on the rig, or read by a console that forwards it."""
    address = UsbPortAddress.parse(port)
    return FootPedal(
        config.format,
        match=address.match(default_match(config.format)),
        key_map=config.keys() if config.format is PedalFormat.PCSENSOR else None,
        timing=config.timing(),
        backend=address.backend(),
        read_timeout_ms=config.read_timeout_ms,
        clock=clock,
    )


class UsbPedalDevice(PedalDevice):
    """A pedal plugged into the rig: read through pyusb (libusb, or the simulator's bus)."""

    connect_errors = (LinkClosedError, UsbTransferError, UsbTimeoutError, OSError)

    def __init__(self, config: PedalDeviceConfig, port: str, context: DeviceContext) -> None:
        super().__init__(config, context)
        self.pedal = foot_pedal(config, port, context.clock)
        self._up = asyncio.Event()

    @property
    def link(self) -> FootPedal:
        return self.pedal

    async def on_up(self) -> None:
        self._up.set()

    def on_lost(self) -> None:
        self._up.clear()

    def _input_tasks(self) -> Sequence[Task]:
        return [("pedal reports", self._read_reports)]

    async def _read_reports(self) -> None:
        while True:
            await self._up.wait()
            try:
                await self.pedal.run(self._events.put_nowait)
            except LinkClosedError:
                # Gone (unplugged, or the bus unreachable): every pressed pedal was released
                # first, and the link is closed, so the supervisor reconnects.
                self._up.clear()
            except (UsbTransferError, UsbTimeoutError) as exc:
                # A read that failed without the device going: released, as if unplugged, and
                # the link closed here so the supervisor reconnects it.
                log.warning("pedal read failed (%s): reconnecting", exc)
                self._emit(self.pedal.tracker.lost(self.context.clock.monotonic()))
                self._up.clear()
                await self.pedal.close()


class ForwardedPedalLink:
    """A pedal's stream from a console: up from its first report, lost when it falls silent
    for the timeout (the supervisor then reports the loss and waits for a new stream)."""

    def __init__(self, station: str, timeout_s: float) -> None:
        self.url = f"forwarded by the {station} console"
        self.stats = LinkStats()
        self.timeout_s = timeout_s
        self.up = False
        self.last_seq: int | None = None
        self._reported = asyncio.Event()

    def reported(self) -> None:
        self.stats.frames_rx += 1
        self._reported.set()

    async def connect(self) -> None:
        self._reported.clear()
        await self._reported.wait()
        self.up = True
        self.stats.connected = True

    async def close(self) -> None:
        self.up = False
        self.stats.connected = False
        self._reported.set()  # wakes wait_closed, which sees the link down

    async def wait_closed(self) -> None:
        while self.up:
            self._reported.clear()
            try:
                async with asyncio.timeout(self.timeout_s):
                    await self._reported.wait()
            except TimeoutError:
                self.up = False
                self.stats.connected = False
        self.last_seq = None  # a new stream starts its own count


class ForwardedPedalDevice(PedalDevice):
    """A pedal plugged into a console, whose state that console forwards (`pedal.report`)."""

    connect_errors = ()

    def __init__(self, config: PedalDeviceConfig, station: str, context: DeviceContext) -> None:
        super().__init__(config, context)
        self.station = station
        self.tracker = PedalTracker(config.timing())
        self._link = ForwardedPedalLink(station, config.forward_timeout_ms / 1000)
        self._deadline_changed = asyncio.Event()

    @property
    def link(self) -> ForwardedPedalLink:
        return self._link

    def forwarded(self, role: Role, report: object) -> JsonObject:
        if not isinstance(report, PedalReport):
            raise ForwardingError(f"devices.pedal: not a pedal report: {type(report).__name__}")
        if role.value != self.station:
            raise ForwardingError(
                f"pedal.report refused: the pedal is plugged into the {self.station} console, "
                f"not the {role} station's"
            )
        link = self._link
        if link.last_seq is not None and report.seq <= link.last_seq:
            link.stats.duplicates += 1
            return {"ok": True, "result": {"accepted": False, "reason": "stale seq"}}
        link.last_seq = report.seq
        link.reported()
        pressed = frozenset(Pedal(name) for name in report.pressed)
        self._emit(self.tracker.feed(pressed, self.context.clock.monotonic()))
        self._deadline_changed.set()
        return {
            "ok": True,
            "result": {
                "accepted": True,
                "pressed": sorted(p.value for p in self.tracker.pressed),
                "report_within_ms": self.config.forward_timeout_ms // 3,
            },
        }

    def on_lost(self) -> None:
        # The stream fell silent: every pressed pedal counts as released.
        self._emit(self.tracker.lost(self.context.clock.monotonic()))
        self.tracker = PedalTracker(self.config.timing())

    def _input_tasks(self) -> Sequence[Task]:
        return [("pedal deadlines", self._poll_deadlines)]

    async def _poll_deadlines(self) -> None:
        """A debounce or a stuck limit ends without a report: poll the tracker then."""
        clock = self.context.clock
        while True:
            self._deadline_changed.clear()
            deadline = self.tracker.next_deadline()
            wait_s = None if deadline is None else max(0.0, deadline - clock.monotonic())
            try:
                async with asyncio.timeout(wait_s):
                    await self._deadline_changed.wait()
            except TimeoutError:
                self._emit(self.tracker.poll(clock.monotonic()))


def pedal_device(config: PedalDeviceConfig, port: str, context: DeviceContext) -> PedalDevice:
    """The pedal where its port says it is plugged in: a console, or the rig."""
    if port.startswith(CONSOLE_PREFIX):
        return ForwardedPedalDevice(config, port.removeprefix(CONSOLE_PREFIX), context)
    return UsbPedalDevice(config, port, context)
