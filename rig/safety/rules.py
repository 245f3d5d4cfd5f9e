"""The interlock's rule table: each actuator command, the states it is allowed in, and what
must be true before it may run.

One table, read top to bottom by a reviewer, and consulted by `Interlock.require` for every
command. A refusal names the first unmet condition in words an operator understands. Rules for
subsystems not built yet are here already, marked pending, so the table is the whole story of
what may move.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from rig.safety.states import RigState


class Action(StrEnum):
    PRIME = "fluid.prime"
    IRRIGATE = "fluid.irrigate"
    HOLD_PRESSURE = "fluid.hold_pressure"
    BOLUS = "fluid.bolus"
    RELIEF = "fluid.relief"
    PUMP_POWER_ON = "pump.power_on"
    PUMP_CONFIGURE = "pump.configure"
    BOARD_CONFIGURE = "board.configure"
    BOARD_ZERO = "board.zero"
    BOARD_REARM = "board.rearm"
    LIGHT = "light.set"
    SELF_TEST = "selftest.run"
    BASKET_CLOSE = "basket.close"
    BASKET_OPEN = "basket.open"
    BASKET_RETRACT = "basket.retract"
    BASKET_HOME = "basket.home"
    BASKET_CONFIGURE = "basket.configure"


@dataclass(frozen=True)
class Facts:
    """What the rules look at, gathered at the moment of the request."""

    links: frozenset[str]
    """The devices whose links are up, by name (the profile's `[devices.<name>]`)."""
    pressure_fresh: bool
    """A pressure sample arrived within the staleness limit."""
    line_primed: bool
    saline_under_cap: bool
    contrast_under_cap: bool
    video_live: bool | None = None
    """Frames arrive from the scope camera within its bound (rig/devices/camera.py); False
    from the start until the first frames when a camera is configured; None: no camera at all.
    The basket reads None as no live video; the fluid reads it as nothing to lose (a bench
    without a scope)."""
    relief_armed: bool = False
    """A pressure stop has just happened and no stop of any kind since (Interlock.arm_relief)."""


@dataclass(frozen=True)
class Requirement:
    name: str
    holds: Callable[[Facts], bool]
    refusal: str


PUMP = "pump"
BOARD = "board"
BASKET = "basket"
FLUID_LINKS = frozenset({PUMP, BOARD})
"""The devices the fluid path needs: nothing moves fluid unless both links are up."""

PUMP_CONNECTED = Requirement(
    "pump_connected", lambda f: PUMP in f.links, "the pump is not connected"
)
BOARD_CONNECTED = Requirement(
    "board_connected",
    lambda f: BOARD in f.links,
    "the I/O board is not connected (no pressure data, no power relay)",
)
PRESSURE_FRESH = Requirement(
    "pressure_fresh", lambda f: f.pressure_fresh, "no fresh pressure data from the I/O board"
)
LINE_PRIMED = Requirement(
    "line_primed",
    lambda f: f.line_primed,
    "the line is not primed (air in the line): run fluid.prime first",
)
SALINE_UNDER_CAP = Requirement(
    "saline_under_cap", lambda f: f.saline_under_cap, "the saline volume cap is reached"
)
CONTRAST_UNDER_CAP = Requirement(
    "contrast_under_cap", lambda f: f.contrast_under_cap, "the contrast volume cap is reached"
)
RELIEF_ARMED = Requirement(
    "relief_armed",
    lambda f: f.relief_armed,
    "no pressure stop to relieve (the relief withdraw runs only right after one, and any later "
    "stop cancels it)",
)
VIDEO_LIVE = Requirement(
    "video_live", lambda f: f.video_live is True, "no live video (the basket closes only in sight)"
)
VIDEO_NOT_LOST = Requirement(
    "video_not_lost",
    lambda f: f.video_live is not False,
    "no live video from the scope camera: saline and contrast flow into the duct only in sight "
    "(the line is primed outside it, without video)",
)
BASKET_CONNECTED = Requirement(
    "basket_connected", lambda f: BASKET in f.links, "the basket's actuator is not connected"
)

FLUID_STATES = frozenset({RigState.READY, RigState.ACTIVE})
_ALL_BUT_ACTIVE = frozenset(RigState) - {RigState.ACTIVE}
_FLUID_BASE = (PUMP_CONNECTED, BOARD_CONNECTED, PRESSURE_FRESH)
_IN_DUCT = (*_FLUID_BASE, LINE_PRIMED, VIDEO_NOT_LOST)
"""Fluid into the duct: a primed line (no air), in sight (H19)."""


@dataclass(frozen=True)
class Rule:
    action: Action
    states: frozenset[RigState]
    requires: tuple[Requirement, ...]
    pending: str | None = None
    """Why the rule cannot be exercised yet (its subsystem is not built)."""


RULES: dict[Action, Rule] = {
    rule.action: rule
    for rule in (
        Rule(Action.PRIME, FLUID_STATES, (*_FLUID_BASE, SALINE_UNDER_CAP)),
        Rule(Action.IRRIGATE, FLUID_STATES, (*_IN_DUCT, SALINE_UNDER_CAP)),
        Rule(Action.HOLD_PRESSURE, FLUID_STATES, (*_IN_DUCT, SALINE_UNDER_CAP)),
        Rule(Action.BOLUS, FLUID_STATES, (*_IN_DUCT, CONTRAST_UNDER_CAP)),
        # The one motion in FAULT: a short withdraw that takes back the pressure a pressure stop
        # left in the line. Only right after that stop: any later stop or an e-stop cancels it
        # (ESTOP is not among its states), so it can never run on after someone said stop.
        Rule(Action.RELIEF, frozenset({RigState.FAULT}), (PUMP_CONNECTED, RELIEF_ARMED)),
        # The pump's power comes back only outside FAULT and ESTOP; the self-test cycles it.
        Rule(
            Action.PUMP_POWER_ON,
            frozenset({RigState.OFFLINE, RigState.SELF_TEST, RigState.READY}),
            (BOARD_CONNECTED,),
        ),
        # Configuration (the syringe's diameter; the board's watchdog and cut-off) is set when a
        # device connects, which is never while fluid moves (a lost link leaves ACTIVE): a
        # diameter changed under a running pump would change what it delivers.
        Rule(Action.PUMP_CONFIGURE, _ALL_BUT_ACTIVE, ()),
        Rule(Action.BOARD_CONFIGURE, _ALL_BUT_ACTIVE, ()),
        # The zero is taken, and the self-test's own trip reset, only inside the self-test: with
        # the pump unpowered and the line at rest, which the self-test has arranged.
        Rule(Action.BOARD_ZERO, frozenset({RigState.SELF_TEST}), (BOARD_CONNECTED,)),
        Rule(Action.BOARD_REARM, frozenset({RigState.SELF_TEST}), (BOARD_CONNECTED,)),
        # The scope's LED dims or brightens in any state, and no stop switches it off: it moves
        # nothing and pressurises nothing, and after a stop the surgeon must still see to
        # withdraw the scope (darkness during a fault or an e-stop helps nobody). What bounds
        # it is its level: the camera's automatic brightness never sets more than
        # devices.camera.light_max_permille (rig/devices/camera.py).
        Rule(Action.LIGHT, frozenset(RigState), (BOARD_CONNECTED,)),
        Rule(
            Action.SELF_TEST,
            frozenset({RigState.OFFLINE, RigState.READY}),
            (PUMP_CONNECTED, BOARD_CONNECTED),
        ),
        # The basket moves only on a rig with no fault (never in FAULT or ESTOP: a fault halts
        # it and it holds whatever it has, H18), and closes only in sight of the live video.
        Rule(Action.BASKET_CLOSE, FLUID_STATES, (BASKET_CONNECTED, VIDEO_LIVE)),
        # Opening the basket would release a captured lesion: never during a fault.
        Rule(Action.BASKET_OPEN, FLUID_STATES, (BASKET_CONNECTED, VIDEO_LIVE)),
        # Retracting draws the basket back into the channel (out of the duct: no video needed).
        # Never during a fault either.
        Rule(Action.BASKET_RETRACT, FLUID_STATES, (BASKET_CONNECTED,)),
        # Homing draws it back to the reverse switch, as a retract does: a move, so asked for
        # (basket.home) and never during a fault; never started by a connect on its own.
        Rule(Action.BASKET_HOME, FLUID_STATES, (BASKET_CONNECTED,)),
        # Its command timeout, limits and energize, when it connects: in any state but ACTIVE
        # (as the pump's and the board's), since they move nothing.
        Rule(Action.BASKET_CONFIGURE, _ALL_BUT_ACTIVE, ()),
    )
}
assert set(RULES) == set(Action)


def refusal(action: Action, state: RigState, facts: Facts) -> str | None:
    """Why `action` may not run now, or None if it may."""
    rule = RULES[action]
    if rule.pending is not None:
        return f"{action} refused: {rule.pending}"
    if state not in rule.states:
        allowed = ", ".join(sorted(s.value for s in rule.states))
        return f"{action} refused: the rig is {state} (allowed in: {allowed})"
    for requirement in rule.requires:
        if not requirement.holds(facts):
            return f"{action} refused: {requirement.refusal}"
    return None
