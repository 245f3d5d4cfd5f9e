"""The I/O board (pressure, LED, the pump's power relay, e-stop, watchdog) as a device of the rig.

Its section is `[devices.board]` (rig/devices/board_config.py). The driver's relay goes to the
interlock; this module keeps the link facet: it connects and configures the board (its host
watchdog and hard pressure cut-off, through the interlock), feeds the watchdog with heartbeats,
passes pressure samples to the fluid loop and turns the board's events (e-stop, trips) into the
interlock's stops.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from drivers.ioboard import (
    BoardEvent,
    BoardStatus,
    EventKind,
    IoBoard,
    PressureSample,
    ResistanceTrip,
    Trip,
)
from drivers.ioboard.messages import LAG_MAX_MS, LAG_MIN_MS
from drivers.transport.serial import LinkClosedError
from rig.config import FluidLoopConfig
from rig.devices.board_config import BoardDeviceConfig
from rig.devices.contract import Device, DeviceContext, ResetNotes, Task
from rig.events.models import SelfTestWatchdogTrip
from rig.fluid.events import StopCause
from rig.safety.interlock import ActuatorSlots, BoardResistanceStop, InterlockDeniedError
from rig.safety.links import BoardLink


class BoardDevice(Device):
    name = "board"
    connect_errors = (LinkClosedError, TimeoutError, OSError, InterlockDeniedError)

    def __init__(self, config: BoardDeviceConfig, port: str, context: DeviceContext) -> None:
        super().__init__(context)
        self._config = config
        self._driver: IoBoard | None = IoBoard(
            port,
            baudrate=config.baudrate,
            clock=context.clock,
            on_sample=self._on_sample,
            on_event=self._on_event,
            on_resistance_trip=self._on_event,
            command_timeout_s=config.command_timeout_ms / 1000.0,
        )
        self._link = BoardLink(self._driver, before_connect=self._new_sample_stream)
        self._status_at_connect: BoardStatus | None = None
        # The self-test's hold on the heartbeat, and the watchdog trip it provokes on purpose
        # (rig/safety/selftest.py).
        self.heartbeats_paused = False
        self.last_heartbeat_s = 0.0
        self.expecting_watchdog_trip = False

    @property
    def link(self) -> BoardLink:
        return self._link

    def provide(self, slots: ActuatorSlots) -> None:
        # The driver goes to the interlock once; this device keeps only its link facet.
        driver, self._driver = self._driver, None
        if driver is None:
            raise RuntimeError("the I/O board's driver was already handed to an interlock")
        slots.relay = driver

    async def configure(self) -> None:
        await self.context.interlock.configure_board(
            watchdog_timeout_ms=self._config.watchdog_timeout_ms,
            cutoff_mmhg=self.context.profile.limits.board_cutoff_mmhg,
            resistance_stop=self.resistance_stop(),
        )
        status = self._status_at_connect = await self._link.status()
        if status.trips:
            self.context.trip(
                StopCause.BOARD_TRIP,
                "I/O board reports a latched trip from before this start: "
                + ", ".join(str(t.name).lower() for t in Trip if t in status.trips),
            )

    def resistance_stop(self) -> BoardResistanceStop:
        """The board's resistance-stop limits: [devices.board]'s, with the line's time
        constants from [fluid] (docs/firmware.md, "The resistance stop")."""
        return board_resistance_stop(self._config, self.context.profile.fluid)

    async def on_up(self) -> None:
        status = self._status_at_connect
        if (
            status is not None
            and not status.relay_closed
            and self.context.interlock.latched is None
        ):
            await self.context.interlock.restore_pump_power()

    def on_lost(self) -> None:
        self.context.trip_if_moving(
            StopCause.BOARD_LINK_LOST, "I/O board link lost while fluid moved"
        )

    def tasks(self) -> Sequence[Task]:
        return [("board heartbeat", self._heartbeat)]

    async def _heartbeat(self) -> None:
        period_s = self._config.heartbeat_period_ms / 1000.0
        while True:
            if self.connected and not self.heartbeats_paused:
                with contextlib.suppress(LinkClosedError):
                    if self._link.heartbeat_nowait() is not None:
                        self.last_heartbeat_s = self.context.clock.monotonic()
            await asyncio.sleep(period_s)

    async def before_reset(self, notes: ResetNotes) -> None:
        if self.connected and not (await self._link.status()).relay_closed:
            notes.pump_power_restored = True

    def _new_sample_stream(self) -> None:
        self.context.controller.sample_stream_restarted()

    def _on_sample(self, sample: PressureSample) -> None:
        # The board's own microsecond clock (ticks_us) wraps every 2^30 us, 17.9 minutes; the
        # driver extends it (and, on the simulator, lines it up with the host's clock): use the
        # extended time.
        board_us = round(sample.board_time_s * 1_000_000)
        self.context.controller.on_sample(
            board_us, sample.pressure_mmhg, sample.rx_time_s, sample.sample_counter
        )

    def _on_event(self, event: BoardEvent | ResistanceTrip) -> None:
        try:
            self._handle_event(event)
        except Exception as exc:
            self.context.on_fault("board event handling", exc)

    def _handle_event(self, event: BoardEvent | ResistanceTrip) -> None:
        if isinstance(event, ResistanceTrip):
            self.context.trip(
                StopCause.BOARD_RESISTANCE_STOP,
                f"I/O board: resistance {event.resistance_mmhg_min_per_ml:.1f} mmHg·min/mL at "
                f"{event.flow_ml_min:g} mL/min reached its limit "
                f"{self._config.resistance_stop_mmhg_min_per_ml:g}; it opened the pump relay "
                f"{event.latency_ms:.1f} ms after the first sample over it",
                figures={
                    "board_trigger_t_us": event.trigger_t_us,
                    "board_relay_open_t_us": event.relay_open_t_us,
                    "board_stop_ms": event.latency_ms,
                    "resistance_mmhg_min_per_ml": event.resistance_mmhg_min_per_ml,
                    "flow_ml_min": event.flow_ml_min,
                    "pressure_mmhg": event.pressure_mmhg,
                    "limit_mmhg_min_per_ml": self._config.resistance_stop_mmhg_min_per_ml,
                },
            )
        elif event.kind is EventKind.ESTOP_PRESSED:
            self.context.interlock.estop(
                "the I/O board's e-stop button", mode=self.context.controller.setpoint.mode
            )
        elif event.kind is EventKind.WATCHDOG_TRIP and self.expecting_watchdog_trip:
            self.context.record(SelfTestWatchdogTrip(board_t_us=event.t_us))
        elif event.kind in (EventKind.WATCHDOG_TRIP, EventKind.CUTOFF_TRIP):
            self.context.trip(
                StopCause.BOARD_TRIP,
                f"I/O board: {event.kind.name.lower()}",
                figures={"board_t_us": event.t_us, "pressure_mmhg": event.pressure_mmhg},
            )


def board_resistance_stop(config: BoardDeviceConfig, fluid: FluidLoopConfig) -> BoardResistanceStop:
    """The line's compliance is its nominal time constant over the nominal resistance; the long
    lag is that compliance times the board's limit: the slowest a duct the board must stay quiet
    on can drain (docs/firmware.md)."""
    tau_ms = fluid.line_time_constant_ms
    limit = config.resistance_stop_mmhg_min_per_ml
    long_ms = tau_ms * max(limit / fluid.nominal_resistance_mmhg_min_per_ml, 1.0)
    return BoardResistanceStop(
        limit_mmhg_min_per_ml=limit,
        lag_short_ms=max(round(tau_ms), LAG_MIN_MS),
        lag_long_ms=min(max(round(long_ms), LAG_MIN_MS), LAG_MAX_MS),
        persistence_samples=config.resistance_stop_samples,
    )
