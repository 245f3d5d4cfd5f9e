"""The one arbiter between policy and the actuators: system state, rule table, latched faults.

Nothing else in the rig holds a reference that can move the pump or switch its power relay.
Every request names an `Action`; the interlock checks it against the rule table (rig/safety/
rules.py) and the system state (rig/safety/states.py) before any byte is written, and records
every refusal with its reason.

The fault paths (`trip`, `estop`) are synchronous: they queue the stop bytes ahead of
everything else and never await, so nothing can run between the decision and the stop being on
the wire. Faults latch. The first cause is kept until an operator resets it; a reset leaves every
setpoint at zero flow, so the old command can never resume by itself.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from drivers.ioboard import BoardCommandRejectedError, SetFlow
from drivers.ne1000 import Direction, PumpError, PumpTimeoutError
from drivers.tic.codec import Field, HomeDirection, Setting
from rig.fluid.events import Figure, StopCause, StopEvent
from rig.safety.rules import BOARD, FLUID_LINKS, PUMP, Action, Facts, refusal
from rig.safety.states import LATCHED_STATES, RigState, StateMachine

log = logging.getLogger(__name__)


class InterlockDeniedError(Exception):
    """A command was refused; `reason` says why in words an operator understands."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PumpFaultError(Exception):
    """The pump refused a command, answered it with an alarm or with a corrupt reply: a fault
    of the pump, for the fluid loop to latch (a timeout stays a TimeoutError: the link's)."""


class ActuatorRefusedError(InterlockDeniedError):
    """An actuator refused what the rules allowed: the I/O board keeps its trip latched and its
    relay open while its e-stop button is held down."""


class MotionCancelledError(InterlockDeniedError):
    """A stop came while a multi-step motion was on its way: the rest of it is not sent."""


class PumpActuator(Protocol):
    """What the interlock needs of the pump driver (drivers.ne1000.Ne1000Pump)."""

    def stop_nowait(self) -> float: ...
    async def stop(self) -> None: ...
    async def set_direction(self, direction: Direction) -> None: ...
    async def set_rate(self, ml_min: float) -> None: ...
    async def set_volume_ul(self, ul: float) -> None: ...
    async def clear_dispensed(self, direction: Direction) -> None: ...
    async def run(self) -> None: ...
    async def set_diameter(self, mm: float) -> None: ...
    def stop_from_thread(self) -> None: ...


class RelayActuator(Protocol):
    """What the interlock needs of the I/O board (drivers.ioboard.IoBoard)."""

    def open_pump_relay_nowait(self) -> float: ...
    async def set_pump_relay(self, closed: bool) -> None: ...
    async def reset_trip(self) -> None: ...
    async def configure_watchdog(self, timeout_ms: int) -> None: ...
    async def set_cutoff(self, mmhg: float) -> None: ...
    async def zero_pressure(self) -> None: ...
    async def set_light(self, permille: int) -> None: ...

    def set_flow_nowait(self, message: SetFlow) -> float | None: ...


class BasketActuator(Protocol):
    """What the interlock needs of the basket's Tic (drivers.tic.TicStepper)."""

    def halt_and_hold_nowait(self) -> None: ...
    async def halt_and_set_position(self, position_usteps: int) -> None: ...
    async def configure_command_timeout(self, timeout_ms: int) -> None: ...
    async def configure_settings(self, values: Mapping[Field, int]) -> None: ...
    async def go_home(self, direction: HomeDirection = HomeDirection.REVERSE) -> None: ...
    async def set_max_accel(self, accel_usteps_per_100s2: int) -> None: ...
    async def set_max_decel(self, decel_usteps_per_100s2: int) -> None: ...
    async def set_current_limit_code(self, code: int) -> None: ...
    async def energize(self) -> None: ...
    async def set_max_speed(self, speed_usteps_per_10ks: int) -> None: ...
    async def exit_safe_start(self) -> None: ...
    async def set_target_position(self, position_usteps: int) -> None: ...


@dataclass(frozen=True)
class BasketLimits:
    """What the Tic is configured with at connect ([devices.basket])."""

    command_timeout_ms: int
    max_accel_usteps_per_100s2: int
    max_decel_usteps_per_100s2: int
    current_limit_code: int
    homing_speed_towards_usteps_per_10ks: int
    homing_speed_away_usteps_per_10ks: int


@dataclass(frozen=True)
class BoardResistanceStop:
    """The board's own resistance stop (docs/firmware.md), sent with every flow the board is
    told ([devices.board], the line's time constants from [fluid])."""

    limit_mmhg_min_per_ml: float
    lag_short_ms: int
    """The line's time constant at the nominal duct (fluid.line_time_constant_ms)."""
    lag_long_ms: int
    """The line's time constant at the board's limit: a duct that tight drains this slowly."""
    persistence_samples: int

    def message(self, flow_ml_min: float) -> SetFlow:
        return SetFlow(
            flow_ml_min,
            self.limit_mmhg_min_per_ml,
            self.lag_short_ms,
            self.lag_long_ms,
            self.persistence_samples,
        )


@dataclass(frozen=True)
class FluidFacts:
    """What the fluid controller knows that the rules need."""

    pressure_fresh: bool
    line_primed: bool
    saline_under_cap: bool
    contrast_under_cap: bool


@dataclass(frozen=True)
class Denial:
    action: str
    reason: str
    state: RigState
    wall_time: float = field(default_factory=time.time)


StopListener = Callable[[StopEvent], None]
DenialListener = Callable[[Denial], None]
EmergencyHandler = tuple[str, Callable[[], object]]

_NO_FLUID_FACTS = FluidFacts(False, False, False, False)


@dataclass
class ActuatorSlots:
    """What the devices hand the interlock (rig/devices/contract.py, Device.provide): the
    interlock is built from these, and nothing else keeps a driver that can move."""

    pump: PumpActuator | None = None
    relay: RelayActuator | None = None
    basket: BasketActuator | None = None
    """The basket's Tic; None on a rig without a basket."""
    emergency: list[EmergencyHandler] = field(default_factory=list)
    """Other actuators' synchronous stops, run by every e-stop."""

    def build(self) -> Interlock:
        if self.pump is None or self.relay is None:
            missing = [name for name in ("pump", "relay") if getattr(self, name) is None]
            raise ValueError(
                f"no device provides the interlock's {' and '.join(missing)}: the profile's "
                "[devices] needs the pump and the I/O board"
            )
        interlock = Interlock(self.pump, self.relay, self.basket)
        for name, handler in self.emergency:
            interlock.add_emergency_handler(name, handler)
        return interlock


class Interlock:
    def __init__(
        self, pump: PumpActuator, relay: RelayActuator, basket: BasketActuator | None = None
    ) -> None:
        self._pump = pump
        self._relay = relay
        self._basket = basket
        self.basket_moving: Callable[[], bool] = lambda: False
        """Whether the basket is on its way somewhere (its controller says): a fault halts it."""
        self.machine = StateMachine()
        self.latched: StopEvent | None = None
        self._links_up: set[str] = set()
        self._video_live: bool | None = None
        """None: this rig has no camera (rig/devices/camera.py feeds it from the camera's health)."""
        self.self_test_passed = False
        self.fluid_facts: Callable[[], FluidFacts] = lambda: _NO_FLUID_FACTS
        self.denials: deque[Denial] = deque(maxlen=100)
        self._stop_listeners: list[StopListener] = []
        self._denial_listeners: list[DenialListener] = []
        self.stops = 0
        """How many stops (trip, e-stop, power cut) so far: a motion started before the latest
        one is cancelled at its next step."""
        self._relief_after_stop: int | None = None
        self._board_stop: BoardResistanceStop | None = None
        """Set at the board's configuration; until then the board is told no flow."""
        self.board_flow_ml_min = 0.0
        """The flow the board was last told (0 at rest: its resistance stop disarmed)."""
        self._emergency_handlers: list[EmergencyHandler] = [
            ("pump_stop", self._pump.stop_nowait),
            ("pump_power_relay", self._relay.open_pump_relay_nowait),
        ]
        if basket is not None:
            self._emergency_handlers.append(("basket_halt", basket.halt_and_hold_nowait))

    @property
    def state(self) -> RigState:
        return self.machine.state

    def add_stop_listener(self, listener: StopListener) -> None:
        self._stop_listeners.append(listener)

    def add_denial_listener(self, listener: DenialListener) -> None:
        self._denial_listeners.append(listener)

    def add_emergency_handler(self, name: str, handler: Callable[[], object]) -> None:
        """Another actuator's synchronous stop, run by every e-stop (the basket's, later)."""
        self._emergency_handlers.append((name, handler))

    # -- the rule table -------------------------------------------------------------------

    def facts(self) -> Facts:
        fluid = self.fluid_facts()
        return Facts(
            relief_armed=self._relief_after_stop == self.stops,
            links=frozenset(self._links_up),
            pressure_fresh=fluid.pressure_fresh,
            line_primed=fluid.line_primed,
            saline_under_cap=fluid.saline_under_cap,
            contrast_under_cap=fluid.contrast_under_cap,
            video_live=self._video_live,
        )

    def require(self, action: Action) -> None:
        """Raise InterlockDeniedError, recorded with its reason, unless `action` may run now."""
        reason = refusal(action, self.state, self.facts())
        if reason is None:
            return
        if self.latched is not None:
            reason += f" (fault latched: {self.latched.cause}: {self.latched.message}; reset first)"
        denial = Denial(action.value, reason, self.state)
        self.denials.append(denial)
        log.info("denied: %s", reason)
        for listener in self._denial_listeners:
            _call_safely(listener, denial)
        raise InterlockDeniedError(reason)

    # -- the fault paths: synchronous, never await ------------------------------------------

    def trip(
        self,
        cause: StopCause,
        message: str,
        *,
        mode: str,
        figures: dict[str, Figure] | None = None,
        trigger_sample_t_us: int | None = None,
    ) -> StopEvent:
        """Stop the pump now and record why. A later cause never replaces the first."""
        tx_done_s = self._stop_pump_now()
        self._tell_board_flow(0.0)
        if cause.latches:
            self._halt_basket_now()
        self.stops += 1
        event = StopEvent(
            cause=cause,
            message=message,
            mode=mode,
            figures=dict(figures or {}),
            trigger_sample_t_us=trigger_sample_t_us,
            stop_tx_done_us=None if tx_done_s is None else int(tx_done_s * 1_000_000),
        )
        if cause.latches:
            self._latch(event, RigState.FAULT)
        elif self.state is RigState.ACTIVE:
            self.machine.go(RigState.READY, f"stopped: {cause}")
        self._announce(event)
        return event

    def cut_pump_power(
        self, cause: StopCause, message: str, *, mode: str, figures: dict[str, Figure] | None = None
    ) -> StopEvent:
        """Open the pump's power relay now: for a pump that does not obey its stop command."""
        try:
            tx_done_s: float | None = self._relay.open_pump_relay_nowait()
        except Exception as exc:
            log.critical("the pump ignores its stop and its relay cannot be opened: %s", exc)
            tx_done_s = None
        self._tell_board_flow(0.0)
        self.stops += 1
        event = StopEvent(
            cause=cause,
            message=message,
            mode=mode,
            figures=dict(figures or {}),
            stop_tx_done_us=None if tx_done_s is None else int(tx_done_s * 1_000_000),
        )
        self._latch(event, RigState.FAULT)
        self._announce(event)
        return event

    def estop(self, source: str, *, mode: str = "") -> StopEvent:
        """Everything stops, in one step that awaits nothing; every handler runs even if one
        fails. Idempotent: pressing twice stops twice and records once."""
        outcomes: dict[str, Figure] = {}
        for name, handler in self._emergency_handlers:
            try:
                handler()
                outcomes[name] = "done"
            except Exception as exc:
                log.error("e-stop handler %s failed: %s", name, exc)
                outcomes[name] = f"failed: {exc}"
        self._tell_board_flow(0.0)
        self.stops += 1
        event = StopEvent(
            StopCause.ESTOP, f"emergency stop from {source}", mode=mode, figures=outcomes
        )
        self._latch(event, RigState.ESTOP)
        self._announce(event)
        return event

    def _latch(self, event: StopEvent, target: RigState) -> None:
        if self.latched is None:
            self.latched = event
            log.warning("latched %s: %s %s", event.cause, event.message, event.figures)
        else:
            log.warning("further stop while latched (%s): %s", self.latched.cause, event.message)
        if self.state is not RigState.ESTOP:
            self.machine.go(target, f"{event.cause}: {event.message}")

    def _announce(self, event: StopEvent) -> None:
        for listener in self._stop_listeners:
            _call_safely(listener, event)

    def _stop_pump_now(self) -> float | None:
        """Queue the stop bytes first in line; fall back to cutting the pump's power."""
        try:
            return self._pump.stop_nowait()
        except Exception as exc:
            log.error("pump stop could not be written (%s): opening the pump power relay", exc)
        try:
            return self._relay.open_pump_relay_nowait()
        except Exception as exc:
            log.critical("neither the pump nor its relay could be commanded: %s", exc)
            return None

    def _tell_board_flow(self, flow_ml_min: float) -> None:
        """Tell the board the flow the pump was told, for its own resistance stop. Never awaits
        and never raises: a stop calls it, and a board that cannot be told keeps its last flow
        (a flow it was told that no longer runs only makes its stop quieter)."""
        if self._board_stop is None:
            return
        try:
            self._relay.set_flow_nowait(self._board_stop.message(flow_ml_min))
        except Exception as exc:
            log.error("the I/O board could not be told the flow (%g mL/min): %s", flow_ml_min, exc)
            return
        self.board_flow_ml_min = flow_ml_min

    async def _board_flow_step(self, flow_ml_min: float) -> None:
        self._tell_board_flow(flow_ml_min)

    def _halt_basket_now(self) -> None:
        """A latched fault halts a moving basket where it is, and it holds there (H18): it is
        never opened, so what it holds stays held. At rest it already holds its position."""
        if self._basket is None or not self.basket_moving():
            return
        try:
            self._basket.halt_and_hold_nowait()
        except Exception as exc:
            # The Tic's own command timeout (decelerate to hold) is then what stops it.
            log.error("the basket's halt could not be written: %s", exc)

    # -- state bookkeeping ----------------------------------------------------------------

    def set_links(self, **up: bool) -> None:
        """Devices' links came up or went down, by device name (their supervisors say so)."""
        for device, is_up in up.items():
            if is_up:
                self._links_up.add(device)
            else:
                self._links_up.discard(device)
        self._settle()

    def set_video_live(self, live: bool | None) -> None:
        """Frames arrive within the camera's bound, or stopped arriving (the camera says so);
        None: nothing says (no camera)."""
        self._video_live = live

    @property
    def video_live(self) -> bool | None:
        return self._video_live

    def link_up(self, device: str) -> bool:
        return device in self._links_up

    @property
    def pump_link_up(self) -> bool:
        return PUMP in self._links_up

    @property
    def relay_link_up(self) -> bool:
        return BOARD in self._links_up

    @property
    def fluid_links_up(self) -> bool:
        """Every device the fluid path needs is connected."""
        return self._links_up >= FLUID_LINKS

    def begin_self_test(self) -> None:
        self.require(Action.SELF_TEST)
        self.self_test_passed = False
        self.machine.go(RigState.SELF_TEST, "self-test started")

    def end_self_test(self, passed: bool, detail: str) -> None:
        if self.state is not RigState.SELF_TEST:
            return
        self.self_test_passed = passed
        if passed:
            self.machine.go(RigState.READY, f"self-test passed: {detail}")
        else:
            self.trip(StopCause.SELF_TEST_FAILED, f"self-test failed: {detail}", mode="self_test")

    def motion_started(self, action: Action) -> None:
        if self.state is RigState.READY:
            self.machine.go(RigState.ACTIVE, f"{action} started")

    def _settle(self) -> None:
        """Follow the links; a latched or self-testing rig stays where it is."""
        whole = self.fluid_links_up
        if not whole and self.state in (RigState.READY, RigState.ACTIVE):
            self.machine.go(RigState.OFFLINE, "a device link is down")
        elif whole and self.self_test_passed and self.state is RigState.OFFLINE:
            self.machine.go(RigState.READY, "devices connected, self-test passed")

    # -- checked motions ------------------------------------------------------------------

    async def infuse(
        self, action: Action, rate_ml_min: float, volume_ul: float | None = None
    ) -> None:
        """Start infusing at a rate, up to a volume (None: until stopped).

        Each step is checked: a fault that latches, or any stop, while one exchange is on the
        wire cancels the sequence before its next step, and a stop written during the sequence
        follows our bytes on the wire, so the pump ends stopped either way.
        """
        pump = self._pump
        steps: tuple[Callable[[], Awaitable[None]], ...] = (
            lambda: pump.set_direction(Direction.INFUSE),
            lambda: pump.set_rate(rate_ml_min),
            lambda: pump.set_volume_ul(volume_ul or 0.0),
            lambda: pump.clear_dispensed(Direction.INFUSE),
            # the board learns the flow before the pump runs it: armed from the first drop
            lambda: self._board_flow_step(rate_ml_min),
            pump.run,
        )
        await self._motion(action, steps, exchange=_pump_step)
        self.motion_started(action)

    async def set_rate(self, action: Action, rate_ml_min: float) -> None:
        """A new rate for the running pump. The board hears of a rise before the pump and of a
        fall after it, so its divisor is never below the flow the pump runs."""
        self.require(action)
        stops_at_start = self.stops
        rising = rate_ml_min > self.board_flow_ml_min
        if rising:
            self._tell_board_flow(rate_ml_min)
        await _pump_step(self._pump.set_rate(rate_ml_min))
        if not rising and self.stops == stops_at_start:
            self._tell_board_flow(rate_ml_min)

    def arm_relief(self) -> None:
        """Allow one relief withdraw after the stop just announced (a pressure stop); any later
        stop cancels it (rig/safety/rules.py: fluid.relief)."""
        self._relief_after_stop = self.stops

    async def relief_withdraw(self, volume_ul: float, rate_ml_min: float) -> None:
        """The one motion allowed while latched: a short, volume-limited withdraw, right after
        the pressure stop that armed it, checked before each step like every other motion."""
        pump = self._pump
        steps: tuple[Callable[[], Awaitable[None]], ...] = (
            lambda: pump.set_direction(Direction.WITHDRAW),
            lambda: pump.set_rate(rate_ml_min),
            lambda: pump.set_volume_ul(volume_ul),
            pump.run,
        )
        try:
            await self._motion(Action.RELIEF, steps, exchange=_pump_step)
        finally:
            self._relief_after_stop = None  # one relief per stop, whether it ran or not

    async def _motion(
        self,
        action: Action,
        steps: tuple[Callable[[], Awaitable[None]], ...],
        *,
        exchange: Callable[[Awaitable[None]], Awaitable[None]] | None = None,
        halt_late: Callable[[], None] | None = None,
    ) -> None:
        """Run the steps of one motion, each after the rules and a check that no stop came.

        `exchange` runs each step (the pump's maps its device's failures to a pump fault);
        `halt_late` halts what the last step started when a stop came while it was on the wire
        (the basket's move counts as started only once its target is sent)."""
        stops_at_start = self.stops
        for step in steps:
            if self.stops != stops_at_start:
                raise MotionCancelledError(f"{action} cancelled: a stop came while it started")
            self.require(action)
            await (step() if exchange is None else exchange(step()))
        if halt_late is not None and self.stops != stops_at_start:
            halt_late()
            raise MotionCancelledError(f"{action} cancelled: a stop came while it started")

    async def stop(self) -> None:
        """An ordinary, confirmed stop (shutdown): always allowed."""
        await self._pump.stop()
        self._tell_board_flow(0.0)

    def stop_from_thread(self) -> None:
        """The loop-stall guard's stop, from its own thread while the event loop is stuck:
        always allowed, like every stop."""
        self._pump.stop_from_thread()

    async def configure_pump(self, *, syringe_diameter_mm: float) -> None:
        """At connect: the syringe the pump computes its volumes with."""
        self.require(Action.PUMP_CONFIGURE)
        await self._pump.set_diameter(syringe_diameter_mm)

    async def configure_board(
        self,
        *,
        watchdog_timeout_ms: int,
        cutoff_mmhg: float,
        resistance_stop: BoardResistanceStop,
    ) -> None:
        """At connect: the board's host watchdog, its hard pressure cut-off, and its resistance
        stop's limits with no flow (a reconnected board never resumes a flow it was told
        before: the next start tells it)."""
        self.require(Action.BOARD_CONFIGURE)
        await self._relay.configure_watchdog(watchdog_timeout_ms)
        await self._relay.set_cutoff(cutoff_mmhg)
        self._board_stop = resistance_stop
        self._tell_board_flow(0.0)

    async def zero_pressure(self) -> None:
        """The self-test's zero of the transducer (the board refuses it with the relay closed)."""
        self.require(Action.BOARD_ZERO)
        await self._relay.zero_pressure()

    async def rearm_board(self) -> None:
        """The self-test's reset of the watchdog trip it provoked on purpose."""
        self.require(Action.BOARD_REARM)
        await self._relay.reset_trip()

    async def set_light(self, permille: int) -> None:
        """The scope's LED at `permille` of full (the camera's automatic brightness,
        rig/devices/camera.py); allowed in every state (rig/safety/rules.py: light.set)."""
        self.require(Action.LIGHT)
        await _relay_step(self._relay.set_light(permille))

    async def restore_pump_power(self) -> None:
        """Close the pump's power relay; refused in FAULT and ESTOP."""
        self.require(Action.PUMP_POWER_ON)
        await _relay_step(self._relay.set_pump_relay(True))

    # -- the basket ---------------------------------------------------------------------------

    def _tic(self) -> BasketActuator:
        if self._basket is None:
            raise InterlockDeniedError("this rig has no basket (no [devices.basket] section)")
        return self._basket

    async def configure_basket(self, limits: BasketLimits) -> None:
        """At connect: arm the Tic's command timeout, set its limits, energize it (a setting
        moves nothing; nothing moves until a move allowed here exits safe start)."""
        self.require(Action.BASKET_CONFIGURE)
        tic = self._tic()
        await tic.configure_command_timeout(limits.command_timeout_ms)
        await tic.configure_settings(
            {
                Setting.HOMING_SPEED_TOWARDS: limits.homing_speed_towards_usteps_per_10ks,
                Setting.HOMING_SPEED_AWAY: limits.homing_speed_away_usteps_per_10ks,
            }
        )
        await tic.set_max_accel(limits.max_accel_usteps_per_100s2)
        await tic.set_max_decel(limits.max_decel_usteps_per_100s2)
        await tic.set_current_limit_code(limits.current_limit_code)
        await tic.energize()

    async def move_basket(self, action: Action, target_usteps: int, speed: int) -> None:
        """Move the basket to `target_usteps` at most at `speed` (usteps per 10000 s), each step
        after the rules and a check that no stop came (as a fluid motion's)."""
        tic = self._tic()
        steps: tuple[Callable[[], Awaitable[None]], ...] = (
            lambda: tic.set_max_speed(speed),
            tic.exit_safe_start,
            lambda: tic.set_target_position(target_usteps),
        )
        await self._motion(action, steps, halt_late=self.halt_basket_nowait)

    async def home_basket(self) -> None:
        """Home the basket against its reverse switch (the Tic's go-home, at the homing speeds
        set at connect): its position is known again at the switch."""
        tic = self._tic()
        await self._motion(
            Action.BASKET_HOME,
            (tic.exit_safe_start, lambda: tic.go_home(HomeDirection.REVERSE)),
            halt_late=self.halt_basket_nowait,
        )

    async def steer_basket(self, action: Action, target_usteps: int) -> None:
        """Give the move under way a new target (a close's leash moved on, as its encoder
        moves): the same rules as its start; no exit of safe start, so a Tic that stopped on
        its own (its command timeout, an error) stays stopped."""
        tic = self._tic()
        await self._motion(
            action,
            (lambda: tic.set_target_position(target_usteps),),
            halt_late=self.halt_basket_nowait,
        )

    async def hold_basket(self, position_usteps: int) -> None:
        """Stop the basket where it stands and call that its position (the grasp: the counter
        is set to the encoder's count, so the stage's position stays known). Always allowed:
        it only stops."""
        await self._tic().halt_and_set_position(position_usteps)

    def halt_basket_nowait(self) -> None:
        """Stop the basket now, awaiting nothing (an unplugged Tic: its timeout holds it)."""
        self._tic().halt_and_hold_nowait()

    async def reset(self) -> StopEvent | None:
        """Clear the latched fault or e-stop (board trips included); return what was cleared.

        The pump is left stopped with its power restored: what runs next is decided by a new
        command, never by what ran before.
        """
        if self.relay_link_up:
            await _relay_step(self._relay.reset_trip())
            self._tell_board_flow(0.0)
        cleared, self.latched = self.latched, None
        if self.state in LATCHED_STATES:
            whole = self.fluid_links_up and self.self_test_passed
            self.machine.go(RigState.READY if whole else RigState.OFFLINE, "reset by operator")
        if cleared is not None:
            log.info("reset: cleared %s", cleared.cause)
        if self.relay_link_up:
            await _relay_step(self._relay.set_pump_relay(True))
        return cleared


async def _relay_step(step: Awaitable[None]) -> None:
    """One exchange with the I/O board; its refusal is the operator's to hear about."""
    try:
        await step
    except BoardCommandRejectedError as exc:
        raise ActuatorRefusedError(
            f"the I/O board refused: {exc} (is the e-stop button still pressed?)"
        ) from exc


async def _pump_step(step: Awaitable[None]) -> None:
    """One exchange with the pump; a refusal, an alarm or a corrupt reply is a pump fault."""
    try:
        await step
    except PumpTimeoutError:
        raise
    except PumpError as exc:
        raise PumpFaultError(str(exc)) from exc


def _call_safely(listener: Callable[[object], None] | Callable[..., None], item: object) -> None:
    try:
        listener(item)
    except Exception:
        # One broken listener must not keep the others (the API, the record) from hearing.
        log.exception("listener %r failed", listener)
