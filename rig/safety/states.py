"""The rig's system state: one enum, one table of allowed transitions, every change logged and
told to the listeners (the daemon journals each one as an event).

FAULT and ESTOP are ordinary states (dVRK's lesson), reached from anywhere, and left only by
an operator's reset. ESTOP outranks FAULT: an e-stop during a fault is recorded, a fault during
an e-stop changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

log = logging.getLogger(__name__)


class RigState(StrEnum):
    OFFLINE = "offline"
    """A device is not connected, or the rig has not been checked since it started."""
    SELF_TEST = "self_test"
    READY = "ready"
    """Self-test passed, devices connected, no fault: fluid may start."""
    ACTIVE = "active"
    """Fluid is moving."""
    FAULT = "fault"
    """A latched fault: everything stopped until an operator resets it."""
    ESTOP = "estop"
    """A latched emergency stop: everything stopped until the button is released and reset."""


_ANY = frozenset(RigState)
TRANSITIONS: dict[RigState, frozenset[RigState]] = {
    # OFFLINE -> READY: a link came back and the self-test had already passed since start.
    RigState.OFFLINE: frozenset(
        {RigState.SELF_TEST, RigState.READY, RigState.FAULT, RigState.ESTOP}
    ),
    RigState.SELF_TEST: frozenset(
        {RigState.READY, RigState.OFFLINE, RigState.FAULT, RigState.ESTOP}
    ),
    RigState.READY: frozenset(
        {RigState.ACTIVE, RigState.SELF_TEST, RigState.OFFLINE, RigState.FAULT, RigState.ESTOP}
    ),
    RigState.ACTIVE: frozenset({RigState.READY, RigState.OFFLINE, RigState.FAULT, RigState.ESTOP}),
    # Leaving FAULT or ESTOP is a reset: back to READY when the rig is whole, else OFFLINE.
    RigState.FAULT: frozenset({RigState.READY, RigState.OFFLINE, RigState.ESTOP}),
    RigState.ESTOP: frozenset({RigState.READY, RigState.OFFLINE}),
}
assert set(TRANSITIONS) == _ANY

LATCHED_STATES = frozenset({RigState.FAULT, RigState.ESTOP})


class IllegalTransitionError(RuntimeError):
    pass


@dataclass(frozen=True)
class Transition:
    from_state: RigState
    to_state: RigState
    cause: str
    wall_time: float


TransitionListener = Callable[[Transition], None]


class StateMachine:
    def __init__(self, initial: RigState = RigState.OFFLINE) -> None:
        self.state = initial
        self._listeners: list[TransitionListener] = []

    def add_listener(self, listener: TransitionListener) -> None:
        self._listeners.append(listener)

    def can_go(self, target: RigState) -> bool:
        return target is self.state or target in TRANSITIONS[self.state]

    def go(self, target: RigState, cause: str) -> bool:
        """Move to `target`; False (and nothing changes) if already there.

        An illegal transition raises: it is a bug in the caller, never a path the rig may take
        silently.
        """
        if target is self.state:
            return False
        if target not in TRANSITIONS[self.state]:
            raise IllegalTransitionError(f"{self.state} -> {target} is not allowed ({cause})")
        transition = Transition(self.state, target, cause, time.time())
        log.info("state %s -> %s: %s", self.state, target, cause)
        self.state = target
        for listener in self._listeners:
            try:
                listener(transition)
            except Exception:
                # A broken listener (the record) must not undo or block the transition, which
                # may be a fault path's.
                log.exception("transition listener %r failed", listener)
        return True
