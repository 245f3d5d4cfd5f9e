"""The rig's USB devices in the simulator: the basket's Tic and the foot pedal on one bus.

The bus is served on a Unix socket in the link directory (`BUS_SOCKET_NAME`, next to the
pseudo-terminals), where the daemon's drivers reach it through `RemoteUsbBackend`, as they reach
libusb on a bench. Cables are pulled and pedals pressed from here (the simulator's control
requests), never through the daemon.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from drivers.clock import Clock
from drivers.pedal.reports import Pedal
from drivers.sim.tic_device import StageSettings, TicDefaults, TicModel
from drivers.sim.tic_serial import SimTicSerial
from drivers.sim.usb.backend import SimUsbBackend
from drivers.sim.usb.device import SimUsbDevice
from drivers.sim.usb.pedals import SimVecPedal
from drivers.sim.usb.server import UsbBusServer
from drivers.sim.usb.tic import SimTicUsb
from drivers.transport.usb_remote import BUS_SOCKET_NAME

TIC_SERIAL_NUMBER = "00200001"
USTEPS_PER_MM = 1600.0
"""The basket's stage: a 1 mm lead screw, 200 full steps a turn, 8 microsteps a step."""
TIP_USTEPS = 1000.0
"""Where the basket's loops leave the scope's tip, on the stage's axis (retracted, 0, is inside
the working channel; the profile's open position, 2000, just past the tip)."""


def lesion_usteps(papilloma_depth_mm: float, tip_depth_mm: float) -> float:
    """Where the closing basket meets the lesion on the stage's axis: the papilloma the scene
    shows (drivers/sim/camera/scene.py, `papilloma_depth_mm`) is this far ahead of the tip
    (the camera's `depth_mm`), and the loops reach it that far past the tip."""
    return TIP_USTEPS + (papilloma_depth_mm - tip_depth_mm) * USTEPS_PER_MM


def basket_stage(papilloma_depth_mm: float, tip_depth_mm: float) -> StageSettings:
    """The basket starts retracted (at the home switch) with the scene's lesion to capture."""
    return StageSettings(
        start_usteps=0.0, obstacle_usteps=lesion_usteps(papilloma_depth_mm, tip_depth_mm)
    )


RIG_TIC_SETTINGS = TicDefaults(
    command_timeout_ms=1000,
    homing_speed_towards_usteps_per_10ks=10_000_000,
    homing_speed_away_usteps_per_10ks=2_000_000,
)
"""The simulator's Tic as set up for the rig with the Tic Control Center (the defaults of
[devices.basket]): over serial, which cannot write settings, the daemon checks them and finds
them so; over USB it writes them anyway."""
PEDAL_ACTIONS = ("press", "release", "bounce")


class SimUsbError(ValueError):
    """A control request for the USB devices that cannot be carried out."""


class SimUsbRig:
    def __init__(
        self,
        link_dir: Path,
        *,
        clock: Clock,
        stage: StageSettings | None = None,
        tic_serial_baudrate: int | None = None,
    ):
        self._clock = clock
        self.bus = SimUsbBackend()
        self.tic = SimTicUsb(
            TicModel(stage if stage is not None else StageSettings(), RIG_TIC_SETTINGS),
            serial_number=TIC_SERIAL_NUMBER,
            clock=clock,
        )
        self.tic_serial = (
            None
            if tic_serial_baudrate is None
            else SimTicSerial(
                self.tic.model,
                link_dir=link_dir,
                baudrate=tic_serial_baudrate,
                clock=clock,
                lock=self.tic.lock,
                name="basket",
            )
        )
        """The same Tic's TTL serial face, on the pseudo-terminal `<link dir>/basket`, when the
        profile's basket is on serial (its `baudrate`); the simulator starts its port with the
        others (the Tic is powered by its attachment to the bus)."""
        self._lesion_usteps = self.tic.model.stage.obstacle_usteps
        """The scene's lesion on the stage's axis (the obstacle the stage starts with)."""
        self._lesion_held = False
        self.lesion_retrieved = False
        """The basket closed on the lesion and was drawn back into the scope with it: the
        lesion is off the wall and out of the basket's way (`track_lesion`)."""
        self.pedal = SimVecPedal()
        self.devices: dict[str, SimUsbDevice] = {"basket": self.tic, "pedal": self.pedal}
        for device in self.devices.values():
            self.bus.attach(device)
        self.server = UsbBusServer(self.bus, link_dir / BUS_SOCKET_NAME)

    async def start(self) -> None:
        await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()

    def device(self, name: str) -> SimUsbDevice:
        try:
            return self.devices[name]
        except KeyError:
            raise SimUsbError(
                f"device = {name!r}: expected one of {sorted(self.devices)}"
            ) from None

    def unplug(self, name: str) -> None:
        self.bus.unplug(self.device(name))

    def plug(self, name: str) -> None:
        self.bus.plug(self.device(name))

    def place_obstacle(self, at_usteps: float | None) -> None:
        """Put something in the basket's way at `at_usteps` on the stage's axis (the lesion, the
        duct wall: closing forward stalls there), or nothing (None: closing reaches closed)."""
        with self.tic.lock:
            model = self.tic.model
            model.advance(self._clock.monotonic())
            model.stage = replace(model.stage, obstacle_usteps=at_usteps)

    def basket_past_tip(self) -> bool:
        """Whether the basket's loops are out of the scope, in its view."""
        return self.tic.sync().physical_usteps > TIP_USTEPS

    def track_lesion(self) -> None:
        """A basket that has met the lesion (the stage stopped at it: closed on it) and is then
        drawn back inside the tip takes the lesion with it. Simplified: opening the loops on
        the way back does not drop it."""
        if self._lesion_usteps is None or self.lesion_retrieved:
            return
        with self.tic.lock:
            model = self.tic.model
            model.advance(self._clock.monotonic())
            if model.stage.obstacle_usteps != self._lesion_usteps:
                return  # the wall or nothing placed in the way: not the lesion
            if model.physical_usteps >= self._lesion_usteps - 0.5:
                self._lesion_held = True
            elif self._lesion_held and model.physical_usteps <= TIP_USTEPS:
                self.lesion_retrieved = True
                model.stage = replace(model.stage, obstacle_usteps=None)

    def power_cycle_tic(self, at_usteps: float, *, encoder_absolute: bool) -> None:
        """The Tic powered up with the stage where it was left (`at_usteps` from the switch):
        its position uncertain, and with an incremental encoder nothing says where it is."""
        with self.tic.lock:
            model = self.tic.model
            model.stage = replace(model.stage, encoder_absolute=encoder_absolute)
            model.physical_usteps = at_usteps
            model.power_up(self._clock.monotonic())

    def plug_all(self) -> None:
        for device in self.devices.values():
            self.bus.plug(device)

    def press(self, action: str, pedal: str, times: int = 1) -> float:
        """The surgeon's foot: `press`, `release`, or `bounce` (a chattering contact). Returns
        when the (first) report was queued on the interrupt endpoint, on CLOCK_MONOTONIC."""
        try:
            which = Pedal(pedal)
        except ValueError:
            raise SimUsbError(
                f"pedal = {pedal!r}: expected one of {[p.value for p in Pedal]}"
            ) from None
        report_at_s = self._clock.monotonic()
        if action == "press":
            self.pedal.press(which)
        elif action == "release":
            self.pedal.release(which)
        elif action == "bounce":
            self.pedal.bounce(which, times)
        else:
            raise SimUsbError(f"action = {action!r}: expected one of {PEDAL_ACTIONS}")
        return report_at_s

    def state(self) -> dict[str, Any]:
        tic = self.tic.sync()
        return {
            "basket": {
                "plugged": self.bus.is_plugged(self.tic),
                "position_usteps": tic.physical_usteps,
                "stalled": tic.stalled,
                "obstacle_usteps": tic.stage.obstacle_usteps,
                "lesion_retrieved": self.lesion_retrieved,
                "energized": tic.energized,
                "velocity_usteps_s": tic.velocity_usteps_s,
                "halt_request_at_s": self.tic.halt_request_at_s,
            },
            "pedal": {
                "plugged": self.bus.is_plugged(self.pedal),
                "down": sorted(p.value for p in self.pedal.down),
            },
        }
