"""The one choke point between policy and the actuators of the fluid path.

Nothing else in the rig holds a reference that can move the pump or switch its power relay: the
fluid controller asks here, and here every request is checked against the latched fault before
any byte is written. The fault path (`trip`) is synchronous: it queues the pump's stop bytes
ahead of everything else and never awaits, so nothing can run between the decision to stop and
the stop being on the wire.

Faults latch. The first cause is kept until an operator resets it; a reset leaves every
setpoint at zero flow, so the old command can never resume by itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from drivers.clock import Clock
from drivers.ne1000 import Direction
from rig.fluid.events import Figure, StopCause, StopEvent

log = logging.getLogger(__name__)


class InterlockDeniedError(Exception):
    """A command was refused; `reason` says why in words an operator understands."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PumpActuator(Protocol):
    """What the interlock needs of the pump driver (drivers.ne1000.Ne1000Pump)."""

    def stop_nowait(self) -> float: ...
    async def stop(self) -> None: ...
    async def set_direction(self, direction: Direction) -> None: ...
    async def set_rate(self, ml_min: float) -> None: ...
    async def set_volume_ul(self, ul: float) -> None: ...
    async def clear_dispensed(self, direction: Direction) -> None: ...
    async def run(self) -> None: ...


class RelayActuator(Protocol):
    """What the interlock needs of the I/O board (drivers.ioboard.IoBoard)."""

    def open_pump_relay_nowait(self) -> float: ...
    async def set_pump_relay(self, closed: bool) -> None: ...
    async def reset_trip(self) -> None: ...


StopListener = Callable[[StopEvent], None]


class Interlock:
    def __init__(self, pump: PumpActuator, relay: RelayActuator, clock: Clock) -> None:
        self._pump = pump
        self._relay = relay
        self._clock = clock
        self._listeners: list[StopListener] = []
        self.latched: StopEvent | None = None
        self.pump_link_up = False
        self.relay_link_up = False
        self.denials = 0

    def add_stop_listener(self, listener: StopListener) -> None:
        self._listeners.append(listener)

    # -- the fault path: synchronous, never awaits ------------------------------------------

    def trip(
        self,
        cause: StopCause,
        message: str,
        *,
        mode: str,
        figures: dict[str, Figure] | None = None,
        trigger_sample_t_us: int | None = None,
    ) -> StopEvent:
        """Stop the pump now and record why. Idempotent: a later cause never replaces the first."""
        tx_done_s = self._stop_now()
        event = StopEvent(
            cause=cause,
            message=message,
            mode=mode,
            figures=dict(figures or {}),
            trigger_sample_t_us=trigger_sample_t_us,
            stop_tx_done_us=None if tx_done_s is None else int(tx_done_s * 1_000_000),
        )
        if cause.latches and self.latched is None:
            self.latched = event
            log.warning("fault latched: %s: %s %s", cause, message, event.figures)
        elif cause.latches:
            log.warning(
                "further fault while latched (%s): %s", self.latched and self.latched.cause, message
            )
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                # One broken listener must not keep the others (the API, the record) from hearing.
                log.exception("stop listener %r failed", listener)
        return event

    def _stop_now(self) -> float | None:
        """Queue the stop bytes first in line; fall back to cutting pump power."""
        try:
            return self._pump.stop_nowait()
        except Exception as exc:
            log.error("pump stop could not be written (%s): opening the pump power relay", exc)
        try:
            return self._relay.open_pump_relay_nowait()
        except Exception as exc:
            log.critical("neither the pump nor its relay could be commanded: %s", exc)
            return None

    # -- checked requests -----------------------------------------------------------------

    def check_motion(self, what: str) -> None:
        """Raise InterlockDeniedError unless the pump may move now."""
        reason = None
        if self.latched is not None:
            reason = f"{what} refused: fault latched ({self.latched.cause}: {self.latched.message}); reset first"
        elif not self.pump_link_up:
            reason = f"{what} refused: pump not connected"
        elif not self.relay_link_up:
            reason = f"{what} refused: I/O board not connected (no pressure data, no power relay)"
        if reason is not None:
            self.denials += 1
            raise InterlockDeniedError(reason)

    async def infuse(self, rate_ml_min: float, volume_ul: float | None = None) -> None:
        """Start infusing at a rate, up to a volume (None: until stopped).

        Each step is checked: a fault that latches while one exchange is on the wire stops the
        sequence before RUN, and a stop written during the sequence follows our bytes on the
        wire, so the pump ends stopped either way.
        """
        pump = self._pump
        self.check_motion("infuse")
        await pump.set_direction(Direction.INFUSE)
        self.check_motion("infuse")
        await pump.set_rate(rate_ml_min)
        self.check_motion("infuse")
        await pump.set_volume_ul(volume_ul or 0.0)
        self.check_motion("infuse")
        await pump.clear_dispensed(Direction.INFUSE)
        self.check_motion("infuse")
        await pump.run()

    async def set_rate(self, rate_ml_min: float) -> None:
        self.check_motion("rate change")
        await self._pump.set_rate(rate_ml_min)

    async def relief_withdraw(self, volume_ul: float, rate_ml_min: float) -> None:
        """The one motion allowed while latched: a short, volume-limited withdraw."""
        pump = self._pump
        await pump.set_direction(Direction.WITHDRAW)
        await pump.set_rate(rate_ml_min)
        await pump.set_volume_ul(volume_ul)
        await pump.run()

    async def stop(self) -> None:
        """An ordinary stop (operator, completion): always allowed."""
        await self._pump.stop()

    async def restore_pump_power(self) -> None:
        """Close the pump's power relay; refused while a fault is latched."""
        if self.latched is not None:
            self.denials += 1
            raise InterlockDeniedError(
                f"pump power stays off: fault latched ({self.latched.cause})"
            )
        await self._relay.set_pump_relay(True)

    async def reset(self) -> StopEvent | None:
        """Clear the latched fault (board trips included); return the fault that was cleared.

        The pump is left stopped with its power restored: what runs next is decided by a new
        command, never by what ran before the fault.
        """
        if self.relay_link_up:
            await self._relay.reset_trip()
        cleared, self.latched = self.latched, None
        if cleared is not None:
            log.info("fault reset: %s", cleared.cause)
        if self.relay_link_up:
            await self._relay.set_pump_relay(True)
        return cleared
