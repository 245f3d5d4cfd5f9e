"""The interlock as one piece: its state machine, rule table, latching, e-stop and reset.

The pump and relay are recording fakes (tests/fluid/plant.py); what is under test is the
arbiter's own logic, and each test fails if the rule it names is removed.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from drivers.clock import ManualClock
from rig.fluid.events import StopCause
from rig.safety.interlock import Denial, FluidFacts, Interlock, InterlockDeniedError
from rig.safety.rules import RULES, Action, Facts, refusal
from rig.safety.states import (
    TRANSITIONS,
    IllegalTransitionError,
    RigState,
    StateMachine,
    Transition,
)
from tests.fluid.plant import RecordingPump, RecordingRelay

HEALTHY = FluidFacts(
    pressure_fresh=True, line_primed=True, saline_under_cap=True, contrast_under_cap=True
)


def make_interlock(
    *, ready: bool = True, facts: FluidFacts = HEALTHY
) -> tuple[Interlock, RecordingPump, RecordingRelay]:
    clock = ManualClock(10.0)
    pump, relay = RecordingPump(clock), RecordingRelay(clock)
    interlock = Interlock(pump, relay)
    interlock.fluid_facts = lambda: facts
    if ready:
        interlock.self_test_passed = True
        interlock.set_links(pump=True, board=True)
    return interlock, pump, relay


def state_of(interlock: Interlock) -> RigState:
    """Read the state afresh (mypy keeps a narrowed property across method calls)."""
    return interlock.state


# -- state machine ------------------------------------------------------------------------


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


# -- rule table ---------------------------------------------------------------------------

GOOD = Facts(
    links=frozenset({"pump", "board"}),
    pressure_fresh=True,
    line_primed=True,
    saline_under_cap=True,
    contrast_under_cap=True,
)


@pytest.mark.parametrize(
    ("action", "facts", "reason"),
    [
        (Action.IRRIGATE, replace(GOOD, line_primed=False), "not primed"),
        (
            Action.IRRIGATE,
            replace(GOOD, pressure_fresh=False),
            "no fresh pressure",
        ),
        (
            Action.IRRIGATE,
            replace(GOOD, links=frozenset({"board"})),
            "pump is not connected",
        ),
        (Action.IRRIGATE, replace(GOOD, links=frozenset({"pump"})), "I/O board"),
        (
            Action.IRRIGATE,
            replace(GOOD, saline_under_cap=False),
            "saline volume cap",
        ),
        (
            Action.BOLUS,
            replace(GOOD, contrast_under_cap=False),
            "contrast volume cap",
        ),
        (Action.BOLUS, replace(GOOD, line_primed=False), "not primed"),
        (
            Action.HOLD_PRESSURE,
            replace(GOOD, line_primed=False),
            "not primed",
        ),
        (
            Action.PRIME,
            replace(GOOD, pressure_fresh=False),
            "no fresh pressure",
        ),
    ],
)
@pytest.mark.hazard("H06", "H11")
def test_each_precondition_refuses_with_its_reason(
    action: Action, facts: Facts, reason: str
) -> None:
    message = refusal(action, RigState.READY, facts)
    assert message is not None and reason in message
    assert refusal(action, RigState.READY, GOOD) is None


def test_prime_does_not_need_a_primed_line() -> None:
    assert refusal(Action.PRIME, RigState.READY, replace(GOOD, line_primed=False)) is None


@pytest.mark.parametrize(
    "state", [RigState.OFFLINE, RigState.SELF_TEST, RigState.FAULT, RigState.ESTOP]
)
@pytest.mark.hazard("H03", "H16")
def test_fluid_is_refused_outside_ready_and_active(state: RigState) -> None:
    for action in (Action.PRIME, Action.IRRIGATE, Action.HOLD_PRESSURE, Action.BOLUS):
        message = refusal(action, state, GOOD)
        assert message is not None and f"the rig is {state}" in message


@pytest.mark.parametrize("state", [RigState.FAULT, RigState.ESTOP])
@pytest.mark.hazard("H07", "H16")
def test_pump_power_stays_off_in_fault_and_estop(state: RigState) -> None:
    assert refusal(Action.PUMP_POWER_ON, state, GOOD) is not None


def test_basket_rules_are_in_the_table_and_pending() -> None:
    for action in (Action.BASKET_CLOSE, Action.BASKET_OPEN):
        assert RULES[action].pending
        assert "not built" in (refusal(action, RigState.READY, GOOD) or "")


# -- latching, e-stop, reset --------------------------------------------------------------


def test_denial_is_recorded_and_announced() -> None:
    interlock, pump, _ = make_interlock(ready=False)
    heard: list[Denial] = []
    interlock.add_denial_listener(heard.append)
    with pytest.raises(InterlockDeniedError, match="the rig is offline"):
        interlock.require(Action.IRRIGATE)
    assert [d.action for d in interlock.denials] == ["fluid.irrigate"] and heard == list(
        interlock.denials
    )
    assert pump.calls == []


@pytest.mark.hazard("H03")
def test_trip_latches_the_first_cause_and_refuses_motion() -> None:
    interlock, pump, _ = make_interlock()
    first = interlock.trip(StopCause.RESISTANCE_RISE, "wall", mode="irrigating")
    interlock.trip(StopCause.PUMP_ALARM, "later", mode="fault")
    assert interlock.latched is first and interlock.state is RigState.FAULT
    assert pump.calls == ["stop_nowait", "stop_nowait"]
    with pytest.raises(InterlockDeniedError, match="fault latched: resistance_rise"):
        interlock.require(Action.IRRIGATE)


def test_ordinary_stop_does_not_latch() -> None:
    interlock, _, _ = make_interlock()
    interlock.motion_started(Action.IRRIGATE)
    assert interlock.state is RigState.ACTIVE
    interlock.trip(StopCause.OPERATOR, "stop", mode="irrigating")
    assert interlock.latched is None and state_of(interlock) is RigState.READY


@pytest.mark.hazard("H16")
def test_estop_runs_every_handler_even_when_one_fails_and_latches() -> None:
    interlock, pump, relay = make_interlock()
    pump.stop_fails = True
    later: list[str] = []
    interlock.add_emergency_handler("basket_hold", lambda: later.append("basket"))
    event = interlock.estop("test")
    assert event.figures["pump_stop"].startswith("failed")  # type: ignore[union-attr]
    assert event.figures["pump_power_relay"] == "done" and relay.calls == ["open"]
    assert later == ["basket"]
    assert interlock.state is RigState.ESTOP and interlock.latched is event


@pytest.mark.hazard("H16")
def test_estop_is_idempotent_and_outranks_a_fault() -> None:
    interlock, _, relay = make_interlock()
    fault = interlock.trip(StopCause.PRESSURE_LIMIT, "over", mode="irrigating")
    interlock.estop("first")
    interlock.estop("second")
    assert interlock.state is RigState.ESTOP and interlock.latched is fault
    assert relay.calls == ["open", "open"]
    interlock.trip(StopCause.PUMP_ALARM, "during e-stop", mode="fault")
    assert interlock.state is RigState.ESTOP


@pytest.mark.hazard("H03")
async def test_reset_clears_the_latch_and_restores_power_but_not_motion() -> None:
    interlock, pump, relay = make_interlock()
    interlock.trip(StopCause.RESISTANCE_LIMIT, "wall", mode="irrigating")
    cleared = await interlock.reset()
    assert cleared is not None and cleared.cause is StopCause.RESISTANCE_LIMIT
    assert interlock.latched is None and interlock.state is RigState.READY
    assert relay.calls == ["reset_trip", "close"]
    assert "run" not in pump.calls


async def test_reset_without_a_passed_self_test_goes_offline() -> None:
    interlock, _, _ = make_interlock(ready=False)
    interlock.set_links(pump=True, board=True)
    interlock.trip(StopCause.SELF_TEST_FAILED, "zero out of tolerance", mode="self_test")
    await interlock.reset()
    assert interlock.state is RigState.OFFLINE


@pytest.mark.hazard("H16")
async def test_pump_power_is_not_restored_while_latched() -> None:
    interlock, _, relay = make_interlock()
    interlock.estop("test")
    with pytest.raises(InterlockDeniedError):
        await interlock.restore_pump_power()
    assert relay.calls == ["open"]


def test_a_link_loss_takes_the_rig_offline_and_back_when_it_returns() -> None:
    interlock, _, _ = make_interlock()
    interlock.set_links(board=False)
    assert interlock.state is RigState.OFFLINE
    interlock.set_links(board=True)
    assert state_of(interlock) is RigState.READY


def test_self_test_failure_latches_a_fault() -> None:
    interlock, _, _ = make_interlock(ready=False)
    interlock.set_links(pump=True, board=True)
    interlock.begin_self_test()
    assert interlock.state is RigState.SELF_TEST
    interlock.end_self_test(False, "watchdog did not trip")
    assert state_of(interlock) is RigState.FAULT and interlock.latched is not None
    assert interlock.latched.cause is StopCause.SELF_TEST_FAILED and not interlock.self_test_passed
