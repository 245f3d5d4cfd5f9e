"""The basket's state machine: pure logic on explicit values, no I/O (rig/devices/basket.py runs it).

The basket wire moves on one axis, in the Tic's microsteps: retracted (in the working channel)
< deployed open < closed. Closing moves forward; on something (a lesion, the wall) the stepper
stalls, its position counter runs on and the stage's encoder does not: the position error
(position - encoder) is the grasp's force proxy. Past `grasp_error_usteps` while closing the
basket has closed on something: it is held there (captured), never pushed further. A close is
also kept on a leash (`leashed`): the Tic is never sent further than `force_limit_usteps`
past the encoder's last reading, so a host late to see a stall (a stalled poll, a busy machine)
leaves the stage stopped at the force limit by the Tic itself (H17).

FAULT is an ordinary state, reached from any state (a rig fault or e-stop, the Tic's link lost,
the Tic's own error); the basket is halted in it and holds. It is left only by `recovered`
(after the rig's reset, with the link up and the Tic's status read), to CAPTURED if it held a
lesion: nothing here ever opens on its own (H18). A refused command is gone: recovery starts no
move, and the next move is a new command.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Literal

MoveOp = Literal["open", "close", "retract", "home"]
Op = Literal["open", "close", "retract", "home", "halt"]


class BasketState(StrEnum):
    UNKNOWN = "unknown"
    """Not connected yet, or its position not yet read."""
    UNHOMED = "unhomed"
    """Connected, but where it is nothing says (the Tic's position uncertain, no encoder to
    trust): nothing but basket.home."""
    HOMING = "homing"
    RETRACTED = "retracted"
    OPENING = "opening"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"
    """Closed on nothing, or halted part-way by a fault and recovered empty."""
    CAPTURED = "captured"
    RETRACTING = "retracting"
    FAULT = "fault"
    """Halted by a fault; holds whatever it holds until the rig is reset."""


MOVING = frozenset(
    {BasketState.OPENING, BasketState.CLOSING, BasketState.RETRACTING, BasketState.HOMING}
)
_AT_REST = frozenset(
    {BasketState.RETRACTED, BasketState.OPEN, BasketState.CLOSED, BasketState.CAPTURED}
)

_FROM: dict[MoveOp, frozenset[BasketState]] = {
    # Opening a captured basket is the surgeon's deliberate release (never in a fault: the
    # interlock's rule refuses basket.open in FAULT and ESTOP).
    "open": frozenset({BasketState.RETRACTED, BasketState.CLOSED, BasketState.CAPTURED}),
    "close": frozenset({BasketState.OPEN}),
    "retract": frozenset({BasketState.OPEN, BasketState.CLOSED, BasketState.CAPTURED}),
    # Homing is a retract to the switch: what makes an unknown position known.
    "home": _AT_REST | {BasketState.UNHOMED},
}
_ON_THE_WAY: dict[MoveOp, BasketState] = {
    "open": BasketState.OPENING,
    "close": BasketState.CLOSING,
    "retract": BasketState.RETRACTING,
    "home": BasketState.HOMING,
}
_ARRIVED: dict[BasketState, BasketState] = {
    BasketState.OPENING: BasketState.OPEN,
    BasketState.CLOSING: BasketState.CLOSED,
    BasketState.RETRACTING: BasketState.RETRACTED,
    BasketState.HOMING: BasketState.RETRACTED,
}


class BasketConflictError(Exception):
    """A basket command that does not fit the basket's state (the API's `state_conflict`)."""


class BasketUnavailableError(Exception):
    """No basket to command: the rig has none, or its Tic did not answer (the API's
    `unavailable`)."""


@dataclass(frozen=True)
class BasketGeometry:
    retracted_usteps: int
    open_usteps: int
    closed_usteps: int
    open_speed: int
    close_speed: int
    grasp_error_usteps: int
    force_limit_usteps: int
    arrived_tolerance_usteps: int = 2


@dataclass(frozen=True)
class Move:
    op: MoveOp
    target_usteps: int
    speed: int
    """usteps per 10000 s (the Tic's unit)."""


@dataclass(frozen=True)
class Reading:
    """What one status of the Tic says about the basket."""

    position_usteps: int
    encoder_usteps: int
    velocity: int
    errors: int
    """The Tic's error bits, safe start excepted (0: none)."""
    homing: bool = False
    """The Tic is homing (its go-home under way)."""
    position_uncertain: bool = False

    @property
    def error_usteps(self) -> int:
        return self.position_usteps - self.encoder_usteps


@dataclass(frozen=True)
class Change:
    """One step of the basket: its new state and why (a `BasketChanged` event)."""

    from_state: BasketState
    to_state: BasketState
    cause: str
    t_s: float
    error_usteps: int | None = None
    hold_at_usteps: int | None = None
    """Halt here and call it the position (a grasp: the encoder's count)."""
    at_force_limit: bool = False


class BasketMachine:
    def __init__(self, geometry: BasketGeometry) -> None:
        self.geometry = geometry
        self.state = BasketState.UNKNOWN
        self.holds_lesion = False
        self.move: Move | None = None
        self.last_reading: Reading | None = None

    @property
    def moving(self) -> bool:
        return self.state in MOVING

    def plan(self, op: MoveOp) -> Move:
        """The move `op` asks for, or BasketConflictError saying why not now."""
        if self.state not in _FROM[op]:
            allowed = ", ".join(sorted(s.value for s in _FROM[op]))
            hints = {
                BasketState.FAULT: " (reset the rig first)",
                BasketState.UNHOMED: " (its position is unknown: basket.home first)",
            }
            hint = hints.get(self.state, "")
            raise BasketConflictError(
                f"basket.{op} refused: the basket is {self.state}{hint} (allowed from: {allowed})"
            )
        g = self.geometry
        if op == "open":
            return Move(op, g.open_usteps, g.open_speed)
        if op == "close":
            return Move(op, g.closed_usteps, g.close_speed)
        if op == "home":
            return Move(op, 0, 0)  # to the switch, at the Tic's homing speeds
        return Move(op, g.retracted_usteps, g.open_speed)

    def target_now(self) -> int | None:
        """The target to send the Tic now for the move under way (None when none is)."""
        if not self.moving or self.move is None or self.move.op == "home":
            return None  # a homing is the Tic's own: a target would end it
        return self.leashed(self.move)

    def leashed(self, move: Move) -> int:
        """The target to send the Tic for `move` now: a close is leashed to
        `force_limit_usteps` past the last encoder reading, so against an obstacle the position
        error can never pass the force limit, however late the host reads the status next
        (H17). The other moves go straight to their target."""
        if move.op != "close" or self.last_reading is None:
            return move.target_usteps
        leash = self.last_reading.encoder_usteps + self.geometry.force_limit_usteps
        return min(move.target_usteps, leash)

    def started(self, move: Move, t_s: float) -> Change:
        self.move = move
        if move.op in ("open", "retract", "home"):
            self.holds_lesion = False  # the surgeon's own release, or the lesion taken out
        return self._go(_ON_THE_WAY[move.op], f"basket.{move.op} to {move.target_usteps}", t_s)

    def on_reading(self, reading: Reading, t_s: float) -> Change | None:
        """A status of the Tic: a grasp, an arrival, an error of the Tic's own."""
        self.last_reading = reading
        g = self.geometry
        if self.state is BasketState.FAULT:
            return None
        if reading.errors and self.state in MOVING:
            return self.fault(f"the Tic reports errors {reading.errors:#x}", t_s)
        if self.state is BasketState.CLOSING and reading.error_usteps >= g.grasp_error_usteps:
            self.holds_lesion = True
            change = self._go(
                BasketState.CAPTURED,
                f"closed on something: position error {reading.error_usteps} usteps "
                f"(grasp at {g.grasp_error_usteps})",
                t_s,
            )
            return replace(
                change,
                error_usteps=reading.error_usteps,
                hold_at_usteps=reading.encoder_usteps,
                at_force_limit=reading.error_usteps >= g.force_limit_usteps,
            )
        if self.state is BasketState.HOMING:
            done = not (reading.homing or reading.position_uncertain or reading.velocity)
            if done and abs(reading.position_usteps) <= g.arrived_tolerance_usteps:
                return self._go(BasketState.RETRACTED, "homed: at the reverse switch", t_s)
            return None
        if self.state in MOVING and self.move is not None:
            there = abs(reading.position_usteps - self.move.target_usteps)
            if there <= g.arrived_tolerance_usteps and reading.velocity == 0:
                return self._go(_ARRIVED[self.state], "arrived", t_s)
        return None

    def halted(self, t_s: float, cause: str = "halted (basket.halt)") -> Change | None:
        """Halted on request (basket.halt: the basket pedal let go), or its move refused on the
        way (a close's leash not extended): where it stands, it holds; part-way is `closed`
        (open or retract from there)."""
        if not self.moving:
            return None
        return self._go(BasketState.CLOSED, cause, t_s)

    def fault(self, cause: str, t_s: float) -> Change | None:
        """Halted: a rig fault or e-stop, the link lost, the Tic's own error."""
        self.move = None
        if self.state is BasketState.FAULT:
            return None
        return self._go(BasketState.FAULT, cause, t_s)

    def recovered(self, reading: Reading, cause: str, t_s: float) -> Change | None:
        """The rig is reset (or the Tic connected) and its status read: where the basket is,
        without moving it. What it held, it still holds."""
        if self.state not in (BasketState.FAULT, BasketState.UNKNOWN, BasketState.UNHOMED):
            return None
        self.last_reading = reading
        g = self.geometry
        if self.holds_lesion:
            target = BasketState.CAPTURED
        elif abs(reading.encoder_usteps - g.retracted_usteps) <= g.arrived_tolerance_usteps:
            target = BasketState.RETRACTED
        elif abs(reading.encoder_usteps - g.open_usteps) <= g.arrived_tolerance_usteps:
            target = BasketState.OPEN
        else:
            target = BasketState.CLOSED
        return self._go(target, cause, t_s)

    def unhomed(self, reading: Reading, cause: str, t_s: float) -> Change | None:
        """Connected (or reset) and its status read, but its position is not known: it stays
        where it is, and only basket.home moves it. What it held, it still holds."""
        if self.state not in (BasketState.FAULT, BasketState.UNKNOWN):
            return None
        self.last_reading = reading
        return self._go(BasketState.UNHOMED, cause, t_s)

    def lost(self, cause: str, t_s: float) -> Change | None:
        """The link is down: where it is, and what it holds, is the Tic's to keep."""
        if self.state is BasketState.UNKNOWN:
            return None
        return self.fault(cause, t_s)

    def _go(self, target: BasketState, cause: str, t_s: float) -> Change:
        change = Change(self.state, target, cause, t_s)
        self.state = target
        if target not in MOVING:
            self.move = None
        return change
