"""The surgeon's foot pedal as a device of the rig.

Its section is `[devices.pedal]` (rig/devices/pedal_config.py). The pedal moves nothing: it asks,
through the one dispatcher, as the surgeon's station (role `surgeon`, client `pedal`), so its
requests meet the same roles, control of the rig, interlock and audit as the console's.

The irrigate pedal is a dead-man: a press asks for irrigation, and every release (let go,
stuck, unplugged) asks for a stop, which is never refused. A pedal held so long it must be stuck
(a bad contact) is released by the tracker; if fluid was moving, that is a latched
`pedal_stuck` fault (H15), and the pedal counts as released until it has really been let go, so
it cannot start anything again by itself. Only a new press (an edge) starts irrigation: a pedal
held down through a stop, a fault or a reset starts nothing.

Reports are read in the pedal driver's worker thread; the events go through a queue to a second
task, which dispatches them in order (a press and its release are never swapped).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence

from drivers.pedal.driver import FootPedal, default_match
from drivers.pedal.reports import PedalFormat
from drivers.pedal.tracker import (
    PedalEvent,
    PedalPressed,
    PedalReleased,
    PedalStuck,
    PedalStuckCleared,
    PedalTapped,
    PedalUnplugged,
    ReleaseCause,
)
from drivers.transport.serial import LinkClosedError
from drivers.transport.usb import UsbTimeoutError, UsbTransferError
from rig.api.roles import Role
from rig.devices.contract import Device, DeviceContext, Task
from rig.devices.pedal_config import PedalAction, PedalDeviceConfig
from rig.devices.usb_port import UsbPortAddress
from rig.events.models import PedalChanged
from rig.fluid.events import StopCause
from rig.safety.interlock import ActuatorSlots

log = logging.getLogger(__name__)

CLIENT = "pedal"
"""The client id the pedal's requests carry in the audit trail."""


class PedalDevice(Device):
    name = "pedal"
    connect_errors = (LinkClosedError, UsbTransferError, UsbTimeoutError, OSError)

    def __init__(self, config: PedalDeviceConfig, port: str, context: DeviceContext) -> None:
        super().__init__(context)
        self.config = config
        address = UsbPortAddress.parse(port)
        self.pedal = FootPedal(
            config.format,
            match=address.match(default_match(config.format)),
            key_map=config.keys() if config.format is PedalFormat.PCSENSOR else None,
            timing=config.timing(),
            backend=address.backend(),
            read_timeout_ms=config.read_timeout_ms,
            clock=context.clock,
        )
        self._up = asyncio.Event()
        self._events: asyncio.Queue[PedalEvent] = asyncio.Queue()

    @property
    def link(self) -> FootPedal:
        return self.pedal

    def provide(self, slots: ActuatorSlots) -> None:
        """Nothing: the pedal moves no actuator, it asks the dispatcher."""

    async def on_up(self) -> None:
        self._up.set()

    def on_lost(self) -> None:
        self._up.clear()

    def tasks(self) -> Sequence[Task]:
        return [("pedal reports", self._read_reports), ("pedal requests", self._dispatch_events)]

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
                for event in self.pedal.tracker.lost(self.context.clock.monotonic()):
                    self._events.put_nowait(event)
                self._up.clear()
                await self.pedal.close()

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
                self.context.record(PedalChanged(change="pressed", pedal=pedal.value))
            case PedalReleased(pedal=pedal, cause=cause, held_s=held_s):
                if self.config.actions.get(pedal) is PedalAction.IRRIGATE:
                    self._dead_man_released(cause, held_s)
                    await self._ask({"op": "fluid.stop"})
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
            error = reply.get("error")
            log.info("pedal: %s refused: %s", request["op"], error)
