"""The rig's state machine (rig/safety/states.py): one table of allowed transitions, every
change logged and told to its listeners (the daemon's journal). What `can_go` and `go` answer,
what an illegal transition says, and what the listeners and the log are told.
"""

from __future__ import annotations

import logging
import time

import pytest

from rig.safety.states import (
    TRANSITIONS,
    IllegalTransitionError,
    RigState,
    StateMachine,
    Transition,
)


@pytest.mark.hazard("H03", "H16")
def test_fault_and_estop_are_reachable_from_every_state_but_estop_is_never_left_for_fault() -> None:
    for state, targets in TRANSITIONS.items():
        if state is not RigState.ESTOP:
            assert RigState.ESTOP in targets, state
        if state not in (RigState.FAULT, RigState.ESTOP):
            assert RigState.FAULT in targets, state
    assert RigState.FAULT not in TRANSITIONS[RigState.ESTOP]


def test_illegal_transition_raises_and_changes_nothing() -> None:
    machine = StateMachine(RigState.OFFLINE)
    heard: list[Transition] = []
    machine.add_listener(heard.append)
    with pytest.raises(IllegalTransitionError):
        machine.go(RigState.ACTIVE, "skipping the self-test")
    assert machine.state is RigState.OFFLINE and not heard


def test_every_transition_is_told_with_its_cause() -> None:
    machine = StateMachine(RigState.OFFLINE)
    heard: list[Transition] = []
    machine.add_listener(heard.append)
    machine.go(RigState.SELF_TEST, "start")
    machine.go(RigState.READY, "passed")
    assert [(t.from_state, t.to_state, t.cause) for t in heard] == [
        (RigState.OFFLINE, RigState.SELF_TEST, "start"),
        (RigState.SELF_TEST, RigState.READY, "passed"),
    ]


def test_can_go_allows_staying_and_exactly_the_table() -> None:
    for state, targets in TRANSITIONS.items():
        machine = StateMachine(state)
        for target in RigState:
            assert machine.can_go(target) is (target is state or target in targets), (
                state,
                target,
            )


def test_go_answers_whether_the_state_changed() -> None:
    machine = StateMachine(RigState.OFFLINE)
    heard: list[Transition] = []
    machine.add_listener(heard.append)
    assert machine.go(RigState.SELF_TEST, "start") is True
    assert machine.go(RigState.SELF_TEST, "start again") is False
    assert len(heard) == 1


def test_an_illegal_transition_names_both_states_and_the_cause() -> None:
    machine = StateMachine(RigState.ESTOP)
    with pytest.raises(IllegalTransitionError) as raised:
        machine.go(RigState.FAULT, "pump alarm")
    assert str(raised.value) == "estop -> fault is not allowed (pump alarm)"


def test_each_transition_records_its_wall_time_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "rig.safety.states")
    machine = StateMachine(RigState.READY)
    heard: list[Transition] = []
    machine.add_listener(heard.append)
    before = time.time()
    machine.go(RigState.ACTIVE, "fluid.irrigate started")
    after = time.time()
    assert before <= heard[-1].wall_time <= after
    assert [r.getMessage() for r in caplog.records if r.name == "rig.safety.states"] == [
        "state ready -> active: fluid.irrigate started"
    ]


def test_every_listener_hears_each_transition_even_after_one_fails() -> None:
    machine = StateMachine(RigState.READY)
    heard: list[Transition] = []

    def broken(_: Transition) -> None:
        raise RuntimeError("listener bug")

    machine.add_listener(broken)
    machine.add_listener(heard.append)
    machine.go(RigState.ACTIVE, "on")
    machine.go(RigState.READY, "off")
    assert machine.state is RigState.READY
    assert [(t.from_state, t.to_state, t.cause) for t in heard] == [
        (RigState.READY, RigState.ACTIVE, "on"),
        (RigState.ACTIVE, RigState.READY, "off"),
    ]
