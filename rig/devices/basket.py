"""The basket's actuator (a Pololu Tic, on USB or its TTL serial port) as a device of the rig,
with its controller.

Its section is `[devices.basket]` (rig/devices/basket_config.py). The Tic's driver goes to the
interlock, which alone moves, halts or configures it; this module keeps the link facet
(rig/safety/links.py), runs the heartbeat that feeds the Tic's command timeout and the status
poll, and drives the basket's state machine (rig/devices/basket_machine.py) with what it reads.

- At connect: the status is read, the command timeout armed and the limits set (through the
  interlock), and the position counter set from the stage's encoder when the Tic says it is
  uncertain (after its power-up, a halt, a replug): the basket's state is known again before
  any move. What the stage held before a loss, it still holds.
- A grasp (the position error past `grasp_error_usteps` while closing) halts the stage where it
  stands (counter := encoder) and the basket reports `captured`. A close's target is moved on
  at each status, never further than `force_limit_usteps` past the encoder (the machine's
  `leashed`): a late poll leaves the Tic stopped at the force limit (H17).
- Any latched fault or e-stop halts a moving basket through the interlock (Interlock.trip and its
  emergency handler) and the machine goes to FAULT; it holds. The rig's reset brings it back to
  where it is (captured if it held a lesion), and starts nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from drivers.tic.codec import TicErrors, TicStatus
from drivers.tic.driver import TicConfigurationError, TicStepper, TicTransport
from drivers.tic.serial import TicSerialTransport
from drivers.tic.usb import TicUsbTransport
from drivers.transport.mqtt import JsonObject
from drivers.transport.serial import LinkClosedError
from drivers.transport.usb import UsbTimeoutError, UsbTransferError
from rig.devices.basket_config import BasketDeviceConfig
from rig.devices.basket_machine import (
    BasketGeometry,
    BasketMachine,
    BasketState,
    BasketUnavailableError,
    Change,
    MoveOp,
    Op,
    Reading,
)
from rig.devices.contract import Device, DeviceContext, ResetNotes, Task
from rig.devices.usb_port import UsbPortAddress
from rig.events.models import BasketChanged
from rig.fluid.events import StopEvent
from rig.safety.interlock import ActuatorSlots, InterlockDeniedError, MotionCancelledError
from rig.safety.links import BasketLink
from rig.safety.rules import Action

log = logging.getLogger(__name__)

LINK_ERRORS = (LinkClosedError, UsbTransferError, UsbTimeoutError, TimeoutError, OSError)
"""What a Tic whose cable was pulled, or that stopped answering, raises."""

_ACTIONS: dict[MoveOp, Action] = {
    "open": Action.BASKET_OPEN,
    "close": Action.BASKET_CLOSE,
    "retract": Action.BASKET_RETRACT,
    "home": Action.BASKET_HOME,
}


class BasketDevice(Device):
    name = "basket"
    connect_errors = (*LINK_ERRORS, InterlockDeniedError, TicConfigurationError)

    def __init__(self, config: BasketDeviceConfig, port: str, context: DeviceContext) -> None:
        super().__init__(context)
        self.config = config
        self._driver: TicStepper | None = TicStepper(
            _transport(config, port, context), clock=context.clock
        )
        self._link = BasketLink(self._driver)
        self.machine = BasketMachine(
            BasketGeometry(
                retracted_usteps=config.retracted_usteps,
                open_usteps=config.open_usteps,
                closed_usteps=config.closed_usteps,
                open_speed=config.open_speed_usteps_per_10ks,
                close_speed=config.close_speed_usteps_per_10ks,
                grasp_error_usteps=config.grasp_error_usteps,
                force_limit_usteps=config.force_limit_usteps,
            )
        )
        self._up = asyncio.Event()
        self._target_sent: int | None = None
        """The target the move under way was last given (a close's leash)."""
        self._encoder_offset: int | None = 0 if config.encoder_absolute else None
        """The stage's position is the encoder's count less this: known from the start with an
        absolute encoder; else learnt when the Tic's counter is trusted at connect, or when it
        is homed, and forgotten when the Tic restarts."""
        self._tic_up_ms: int | None = None
        self._halts = 0
        """basket.halt requests so far: a target sent across one is halted again."""

    @property
    def link(self) -> BasketLink:
        return self._link

    def provide(self, slots: ActuatorSlots) -> None:
        # The driver goes to the interlock once (its halt becomes an e-stop handler there).
        driver, self._driver = self._driver, None
        if driver is None:
            raise RuntimeError("the basket's driver was already handed to an interlock")
        slots.basket = driver

    def tasks(self) -> Sequence[Task]:
        # Bound here: the interlock exists once the daemon asks for the tasks.
        interlock = self.context.interlock
        interlock.basket_moving = lambda: self.machine.moving
        interlock.add_stop_listener(self._on_stop)
        return [("basket heartbeat", self._heartbeat), ("basket status", self._poll)]

    # -- the link ---------------------------------------------------------------------------

    async def configure(self) -> None:
        interlock = self.context.interlock
        await interlock.configure_basket(self.config.limits())
        status = await self._link.status()
        self._track(status)
        if self._encoder_offset is None and not status.position_uncertain:
            # The Tic's counter is trusted (it has not lost it since it was set): so is the
            # encoder, by the difference between them now, at rest.
            self._encoder_offset = status.encoder_position - status.position_usteps
        await self._settle(status, "connected: position read")

    async def on_up(self) -> None:
        self._up.set()

    def on_lost(self) -> None:
        self._up.clear()
        # The Tic's command timeout decelerates it to hold on its own; it is halted for us.
        self._apply(self.machine.lost("the Tic's link was lost", self._now()), None)

    async def after_reset(self, notes: ResetNotes) -> None:
        if not self.connected or self.machine.state is not BasketState.FAULT:
            return  # it will be read when it connects again; or it was never halted
        try:
            status = await self._link.status()
            self._track(status)
            await self._settle(status, "rig reset")
        except LINK_ERRORS as exc:
            log.warning("basket: no status at the reset (%s); read when it reconnects", exc)

    async def _settle(self, status: TicStatus, cause: str) -> None:
        """Where the basket is, from the encoder, without moving it: the Tic's counter set from
        the encoder if it differs or is uncertain; `unhomed` when the encoder says nothing."""
        at = self._stage_position(status)
        now = self._now()
        if at is None:
            why = (
                f"{cause}: its position is unknown (uncertain, not homed since the Tic's power-up)"
            )
            self._apply(self.machine.unhomed(self._reading(status), why, now), status)
            return
        if status.position_uncertain or status.position_usteps != at:
            await self.context.interlock.hold_basket(at)
            status = await self._link.status()
        self._apply(self.machine.recovered(self._reading(status), cause, now), status)

    def _track(self, status: TicStatus) -> bool:
        """Whether the Tic restarted (its up time went back): its counter is lost, and an
        incremental encoder counts from a new zero, so not the stage's position until homed."""
        restarted = self._tic_up_ms is not None and status.up_time_ms < self._tic_up_ms
        self._tic_up_ms = status.up_time_ms
        if restarted and not self.config.encoder_absolute:
            self._encoder_offset = None
        return restarted

    def _stage_position(self, status: TicStatus) -> int | None:
        if self._encoder_offset is None:
            return None
        return status.encoder_position - self._encoder_offset

    def _on_stop(self, event: StopEvent) -> None:
        if event.latched:
            self._apply(self.machine.fault(f"{event.cause}: {event.message}", self._now()), None)

    async def _heartbeat(self) -> None:
        while True:
            await self._up.wait()
            try:
                await self._link.heartbeat(self.config.heartbeat_period_ms / 1000)
            except LINK_ERRORS as exc:
                log.info("basket heartbeat stopped: %s", exc)
                await self._link.close()
                self._up.clear()

    async def _poll(self) -> None:
        clock = self.context.clock
        period_s = self.config.status_period_ms / 1000
        while True:
            await self._up.wait()
            try:
                status = await self._link.status()
            except LINK_ERRORS as exc:
                log.info("basket status failed: %s", exc)
                await self._link.close()
                self._up.clear()
                continue
            if self._track(status):
                # Restarted under us (its supply, a brown-out): it is to be read again, as
                # after a fault, at the rig's reset.
                self._apply(self.machine.fault("the Tic restarted", self._now()), status)
            change = self.machine.on_reading(self._reading(status), self._now())
            homed = change is not None and change.from_state is BasketState.HOMING
            if homed and not self.config.encoder_absolute:
                # At the switch, position 0: the encoder's count there is the stage's zero.
                self._encoder_offset = status.encoder_position - status.position_usteps
            # Recorded at once, in the machine's order: a fault while the hold is on its way
            # is recorded after the grasp, as it happened.
            self._apply(change, status)
            if change is not None and change.hold_at_usteps is not None:
                try:
                    await self.context.interlock.hold_basket(change.hold_at_usteps)
                except LINK_ERRORS as exc:
                    # Gone mid-grasp: its command timeout holds it; the loss is reported.
                    log.warning("basket: the grasp's hold could not be sent: %s", exc)
            await self._steer()
            await clock.sleep(period_s)

    async def _steer(self) -> None:
        """Move a close's leash on with the encoder; refused (the video lost, say), the basket
        halts where it stands."""
        target = self.machine.target_now()
        move = self.machine.move
        if target is None or move is None or target == self._target_sent:
            return
        halts = self._halts
        try:
            await self.context.interlock.steer_basket(_ACTIONS[move.op], target)
            if self._halts != halts:
                self._halt_again()
                return
        except MotionCancelledError:
            return  # a stop came: the interlock halted it, and the machine is in FAULT
        except InterlockDeniedError as exc:
            try:
                self.context.interlock.halt_basket_nowait()
            except LINK_ERRORS as link_exc:
                log.warning("basket: halt not sent (%s); its command timeout holds it", link_exc)
            self._apply(self.machine.halted(self._now(), f"halted: {exc}"), self._link.last_status)
            return
        except LINK_ERRORS as exc:
            log.warning("basket: the close's target could not be moved on: %s", exc)
            return
        self._target_sent = target

    # -- commands (the dispatcher's basket ops) -----------------------------------------------

    async def command(self, op: Op) -> JsonObject:
        """basket.open, basket.close, basket.retract, basket.home: planned by the machine
        (BasketConflictError when not from here), moved through the interlock's rules (InterlockDeniedError);
        basket.halt: halted now, always."""
        if not self.connected:
            raise BasketUnavailableError(f"basket.{op} refused: the basket's Tic is not connected")
        if op == "halt":
            self._halts += 1
            try:
                self.context.interlock.halt_basket_nowait()
            except LINK_ERRORS as exc:
                raise BasketUnavailableError(f"basket.halt: the Tic's link is down: {exc}") from exc
            self._apply(self.machine.halted(self._now()), self._link.last_status)
            return self.as_dict()
        move = self.machine.plan(op)
        target = self.machine.leashed(move)
        self._target_sent = None
        halts = self._halts
        try:
            if op == "home":
                await self.context.interlock.home_basket()
            else:
                await self.context.interlock.move_basket(_ACTIONS[op], target, move.speed)
        except LINK_ERRORS as exc:
            raise BasketUnavailableError(f"basket.{op}: the Tic did not answer: {exc}") from exc
        self._target_sent = target
        self._apply(self.machine.started(move, self._now()), self._link.last_status)
        if self._halts != halts:
            self._halt_again()
        return self.as_dict()

    def _halt_again(self) -> None:
        """A basket.halt came while a target was on its way to the Tic (queued behind the
        link's lock, so it arrived after the halt): halt what it started."""
        try:
            self.context.interlock.halt_basket_nowait()
        except LINK_ERRORS as exc:
            log.warning("basket: halt not sent (%s); its command timeout holds it", exc)
        self._apply(self.machine.halted(self._now()), self._link.last_status)

    def as_dict(self) -> JsonObject:
        reading = self.machine.last_reading
        return {
            "state": self.machine.state.value,
            "holds_lesion": self.machine.holds_lesion,
            "position_usteps": None if reading is None else reading.position_usteps,
            "encoder_usteps": None if reading is None else reading.encoder_usteps,
            "error_usteps": None if reading is None else reading.error_usteps,
        }

    # -- events -------------------------------------------------------------------------------

    def _apply(self, change: Change | None, status: TicStatus | None) -> None:
        if change is None:
            return
        self.context.record(
            BasketChanged(
                from_state=change.from_state.value,
                to_state=change.to_state.value,
                cause=change.cause,
                position_usteps=None if status is None else status.position_usteps,
                encoder_usteps=None if status is None else status.encoder_position,
                error_usteps=change.error_usteps,
                at_force_limit=change.at_force_limit,
                holds_lesion=self.machine.holds_lesion,
            )
        )
        self.context.state_changed()

    def _now(self) -> float:
        return self.context.clock.monotonic()

    def _reading(self, status: TicStatus) -> Reading:
        """The status in the stage's terms: the encoder less its offset (the raw count while
        the offset is unknown: nothing but homing moves it then)."""
        at = self._stage_position(status)
        return Reading(
            position_usteps=status.position_usteps,
            encoder_usteps=status.encoder_position if at is None else at,
            velocity=status.velocity_usteps_per_10ks,
            errors=int(status.errors & ~TicErrors.SAFE_START_VIOLATION),
            homing=status.homing,
            position_uncertain=status.position_uncertain,
        )


def _transport(config: BasketDeviceConfig, port: str, context: DeviceContext) -> TicTransport:
    """The Tic on USB (its ids, or the simulator's bus), or on its TTL serial port."""
    if config.transport == "serial":
        return TicSerialTransport(
            port,
            baudrate=config.baudrate,
            device_number=config.device_number,
            crc=config.crc,
            reply_timeout_s=config.serial_reply_timeout_ms / 1000,
            clock=context.clock,
        )
    address = UsbPortAddress.parse(port)
    return TicUsbTransport(
        serial_number=address.serial_number,
        backend=address.backend(),
        timeout_ms=config.usb_timeout_ms,
        clock=context.clock,
    )
