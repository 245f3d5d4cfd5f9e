"""The interlock as one piece: its rule table, latching, e-stop, reset, links and self-test
bookkeeping, and what its stop events, denials and log lines record (the runaway pump's power
cut, what an incident review reads). The state machine alone is in test_states.py.

The pump and relay are recording fakes (tests/fluid/plant.py); what is under test is the
arbiter's own logic, and each test fails if the rule it names is removed.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import replace

import pytest

from drivers.clock import ManualClock
from drivers.ioboard import BoardCommandRejectedError
from drivers.ioboard.messages import MsgId, Nack, NackReason, ResetTrip, SetFlow
from drivers.ne1000 import Direction, PumpCommandError
from rig.fluid.events import StopCause, StopEvent
from rig.safety.interlock import (
    ActuatorRefusedError,
    BoardResistanceStop,
    Denial,
    FluidFacts,
    Interlock,
    InterlockDeniedError,
    MotionCancelledError,
    PumpFaultError,
)
from rig.safety.rules import Action, Facts, refusal
from rig.safety.states import RigState
from tests.fluid.plant import RecordingPump, RecordingRelay

BOARD_STOP = BoardResistanceStop(
    limit_mmhg_min_per_ml=60.0, lag_short_ms=300, lag_long_ms=1059, persistence_samples=2
)

HEALTHY = FluidFacts(
    pressure_fresh=True, line_primed=True, saline_under_cap=True, contrast_under_cap=True
)

LOGGER = "rig.safety.interlock"
_TRANSITION_CAUSES: weakref.WeakKeyDictionary[Interlock, list[str]] = weakref.WeakKeyDictionary()
"""What each interlock's state machine told its listener, by `make`."""


class FailingRelay(RecordingRelay):
    """A relay whose cable is gone: the synchronous open cannot be written."""

    def open_pump_relay_nowait(self) -> float:
        raise ConnectionError("board cable pulled")


class DirectionRecordingPump(RecordingPump):
    """Records the direction the dispensed count was cleared for, too."""

    async def clear_dispensed(self, direction: Direction) -> None:
        self.calls.append(f"clear {direction.name}")


def make_interlock(
    *,
    ready: bool = True,
    facts: FluidFacts = HEALTHY,
    pump: RecordingPump | None = None,
    relay: RecordingRelay | None = None,
) -> tuple[Interlock, RecordingPump, RecordingRelay]:
    clock = ManualClock(10.0)
    pump = pump or RecordingPump(clock)
    relay = relay or RecordingRelay(clock)
    interlock = Interlock(pump, relay)
    causes: list[str] = []
    interlock.machine.add_listener(lambda transition: causes.append(transition.cause))
    _TRANSITION_CAUSES[interlock] = causes
    interlock.fluid_facts = lambda: facts
    if ready:
        interlock.self_test_passed = True
        interlock.set_links(pump=True, board=True)
    return interlock, pump, relay


def state_of(interlock: Interlock) -> RigState:
    """Read the state afresh (mypy keeps a narrowed property across method calls)."""
    return interlock.state


def last_cause(interlock: Interlock) -> str:
    """The cause of the latest transition of an interlock from `make`."""
    return _TRANSITION_CAUSES[interlock][-1]


def messages(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == LOGGER]


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


@pytest.mark.hazard("H19")
@pytest.mark.parametrize("action", [Action.IRRIGATE, Action.HOLD_PRESSURE, Action.BOLUS])
def test_fluid_into_the_duct_needs_video_not_lost(action: Action) -> None:
    message = refusal(action, RigState.READY, replace(GOOD, video_live=False))
    assert message is not None and "no live video from the scope camera" in message
    assert refusal(action, RigState.READY, replace(GOOD, video_live=True)) is None
    assert refusal(action, RigState.READY, replace(GOOD, video_live=None)) is None  # no camera


def test_priming_outside_the_duct_needs_no_video() -> None:
    assert refusal(Action.PRIME, RigState.READY, replace(GOOD, video_live=False)) is None


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


def test_a_state_refusal_lists_the_allowed_states_sorted() -> None:
    assert refusal(Action.IRRIGATE, RigState.FAULT, GOOD) == (
        "fluid.irrigate refused: the rig is fault (allowed in: active, ready)"
    )
    assert refusal(Action.PUMP_POWER_ON, RigState.ESTOP, GOOD) == (
        "pump.power_on refused: the rig is estop (allowed in: offline, ready, self_test)"
    )


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


async def test_the_light_stays_settable_through_an_estop_but_not_without_the_board() -> None:
    interlock, _, relay = make_interlock()
    interlock.estop("button")
    await interlock.set_light(300)  # the surgeon must still see to withdraw the scope
    assert relay.calls[-1] == "light 300"
    interlock.set_links(board=False)
    with pytest.raises(InterlockDeniedError, match="I/O board is not connected"):
        await interlock.set_light(400)
    assert relay.calls[-1] == "light 300"


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


# -- a fresh interlock --------------------------------------------------------------------


def test_a_fresh_interlock_knows_no_link_no_fluid_fact_and_no_passed_self_test() -> None:
    clock = ManualClock(0.0)
    interlock = Interlock(RecordingPump(clock), RecordingRelay(clock))
    assert interlock.facts() == Facts(
        links=frozenset(),
        pressure_fresh=False,
        line_primed=False,
        saline_under_cap=False,
        contrast_under_cap=False,
    )
    assert interlock.self_test_passed is False
    assert interlock.state is RigState.OFFLINE and interlock.latched is None


def test_one_link_up_is_not_enough_to_be_ready() -> None:
    for links in ({"pump": True}, {"board": True}):
        interlock, _, _ = make_interlock(ready=False)
        interlock.self_test_passed = True
        interlock.set_links(**links)
        assert interlock.state is RigState.OFFLINE, links


# -- denials ------------------------------------------------------------------------------


def test_a_denial_carries_its_reason_and_the_state_it_was_refused_in(
    caplog: pytest.LogCaptureFixture,
) -> None:
    interlock, _, _ = make_interlock(ready=False)
    caplog.set_level(logging.INFO, LOGGER)
    reason = "fluid.irrigate refused: the rig is offline (allowed in: active, ready)"
    with pytest.raises(InterlockDeniedError) as raised:
        interlock.require(Action.IRRIGATE)
    assert raised.value.reason == reason and str(raised.value) == reason
    denial = interlock.denials[-1]
    assert (denial.action, denial.reason, denial.state) == (
        "fluid.irrigate",
        reason,
        RigState.OFFLINE,
    )
    assert (logging.INFO, f"denied: {reason}") in messages(caplog)


def test_a_denial_while_latched_keeps_the_rule_and_adds_the_latched_fault() -> None:
    interlock, _, _ = make_interlock()
    interlock.trip(StopCause.RESISTANCE_RISE, "wall", mode="irrigating")
    with pytest.raises(InterlockDeniedError) as raised:
        interlock.require(Action.IRRIGATE)
    assert raised.value.reason == (
        "fluid.irrigate refused: the rig is fault (allowed in: active, ready)"
        " (fault latched: resistance_rise: wall; reset first)"
    )


def test_the_denial_record_keeps_the_last_hundred() -> None:
    interlock, _, _ = make_interlock(ready=False)
    for _ in range(150):
        with pytest.raises(InterlockDeniedError):
            interlock.require(Action.PRIME)
    assert len(interlock.denials) == 100


def test_a_broken_listener_is_logged_and_the_others_still_hear(
    caplog: pytest.LogCaptureFixture,
) -> None:
    interlock, _, _ = make_interlock(ready=False)

    def broken(denial: Denial) -> None:
        raise RuntimeError("API down")

    heard: list[Denial] = []
    interlock.add_denial_listener(broken)
    interlock.add_denial_listener(heard.append)
    with pytest.raises(InterlockDeniedError):
        interlock.require(Action.IRRIGATE)
    assert len(heard) == 1
    failures = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.ERROR]
    assert [r.getMessage() for r in failures] == [f"listener {broken!r} failed"]
    assert failures[0].exc_info is not None


# -- trip ---------------------------------------------------------------------------------


def test_a_trip_records_what_and_when_the_stop_was_written() -> None:
    interlock, _, _ = make_interlock()
    event = interlock.trip(
        StopCause.PRESSURE_LIMIT,
        "over 80 mmHg",
        mode="irrigating",
        figures={"pressure_mmhg": 81.0},
        trigger_sample_t_us=123,
    )
    assert (event.cause, event.message, event.mode) == (
        StopCause.PRESSURE_LIMIT,
        "over 80 mmHg",
        "irrigating",
    )
    assert event.figures == {"pressure_mmhg": 81.0} and event.trigger_sample_t_us == 123
    # RecordingPump.stop_nowait reports its last byte on the wire 4 ms after "now" (10 s).
    assert event.stop_tx_done_us is not None and abs(event.stop_tx_done_us - 10_004_000) <= 1
    assert last_cause(interlock) == "pressure_limit: over 80 mmHg"


def test_a_trip_with_neither_pump_nor_relay_reachable_still_latches(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock(10.0)
    interlock, pump, _ = make_interlock(relay=FailingRelay(clock))
    pump.stop_fails = True
    event = interlock.trip(StopCause.PUMP_LINK_LOST, "no reply", mode="irrigating")
    assert event.stop_tx_done_us is None
    assert interlock.latched is event and interlock.state is RigState.FAULT
    assert messages(caplog) == [
        (
            logging.ERROR,
            "pump stop could not be written (pump cable pulled): opening the pump power relay",
        ),
        (
            logging.CRITICAL,
            "neither the pump nor its relay could be commanded: board cable pulled",
        ),
        (logging.WARNING, "latched pump_link_lost: no reply {}"),
    ]


def test_a_trip_falls_back_to_the_relay_and_records_its_time() -> None:
    interlock, pump, relay = make_interlock()
    pump.stop_fails = True
    event = interlock.trip(StopCause.PUMP_ALARM, "stall", mode="irrigating")
    assert relay.calls == ["open"]
    assert event.stop_tx_done_us == 10_000_000


def test_an_ordinary_stop_returns_to_ready_naming_its_cause() -> None:
    interlock, _, _ = make_interlock()
    interlock.motion_started(Action.IRRIGATE)
    assert last_cause(interlock) == "fluid.irrigate started"
    interlock.trip(StopCause.COMPLETED, "volume reached", mode="bolus")
    assert state_of(interlock) is RigState.READY
    assert last_cause(interlock) == "stopped: completed"


def test_a_further_stop_while_latched_is_logged_against_the_first(
    caplog: pytest.LogCaptureFixture,
) -> None:
    interlock, _, _ = make_interlock()
    interlock.trip(StopCause.RESISTANCE_LIMIT, "wall", mode="irrigating", figures={"r": 60.0})
    interlock.trip(StopCause.PUMP_ALARM, "alarm", mode="fault")
    assert [m for level, m in messages(caplog) if level == logging.WARNING] == [
        "latched resistance_limit: wall {'r': 60.0}",
        "further stop while latched (resistance_limit): alarm",
    ]


# -- the runaway pump's power cut --------------------------------------------------------


def test_cutting_pump_power_opens_the_relay_latches_and_announces() -> None:
    interlock, pump, relay = make_interlock()
    heard: list[StopEvent] = []
    interlock.add_stop_listener(heard.append)
    interlock.motion_started(Action.IRRIGATE)
    event = interlock.cut_pump_power(
        StopCause.PUMP_DID_NOT_STOP,
        "still infusing after its stop",
        mode="irrigating",
        figures={"dispensed_ul": 45.0},
    )
    assert relay.calls == ["open"] and pump.calls == []
    assert (event.cause, event.message, event.mode, event.figures) == (
        StopCause.PUMP_DID_NOT_STOP,
        "still infusing after its stop",
        "irrigating",
        {"dispensed_ul": 45.0},
    )
    assert event.stop_tx_done_us == 10_000_000 and event.trigger_sample_t_us is None
    assert interlock.latched is event and state_of(interlock) is RigState.FAULT
    assert last_cause(interlock) == "pump_did_not_stop: still infusing after its stop"
    assert heard == [event]


def test_cutting_pump_power_without_figures_records_none() -> None:
    interlock, _, _ = make_interlock()
    event = interlock.cut_pump_power(StopCause.PUMP_DID_NOT_STOP, "runaway", mode="bolus")
    assert event.figures == {}


def test_cutting_pump_power_with_a_dead_relay_still_latches_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock(10.0)
    interlock, _, _ = make_interlock(relay=FailingRelay(clock))
    event = interlock.cut_pump_power(StopCause.PUMP_DID_NOT_STOP, "runaway", mode="bolus")
    assert event.stop_tx_done_us is None
    assert interlock.latched is event and interlock.state is RigState.FAULT
    assert messages(caplog)[0] == (
        logging.CRITICAL,
        "the pump ignores its stop and its relay cannot be opened: board cable pulled",
    )


# -- e-stop -------------------------------------------------------------------------------


def test_an_estop_event_names_its_source_and_mode_and_is_announced(
    caplog: pytest.LogCaptureFixture,
) -> None:
    interlock, pump, _ = make_interlock()
    heard: list[StopEvent] = []
    interlock.add_stop_listener(heard.append)
    default = interlock.estop("pendant")
    assert (default.cause, default.message, default.mode) == (
        StopCause.ESTOP,
        "emergency stop from pendant",
        "",
    )
    pump.stop_fails = True
    second = interlock.estop("api", mode="irrigating")
    assert second.mode == "irrigating" and heard == [default, second]
    assert last_cause(interlock) == "estop: emergency stop from pendant"
    assert (
        logging.ERROR,
        "e-stop handler pump_stop failed: pump cable pulled",
    ) in messages(caplog)


# -- self-test ----------------------------------------------------------------------------


def test_a_passed_self_test_makes_the_rig_ready_and_a_new_one_forgets_it() -> None:
    interlock, _, _ = make_interlock(ready=False)
    interlock.set_links(pump=True, board=True)
    interlock.begin_self_test()
    assert last_cause(interlock) == "self-test started"
    interlock.end_self_test(True, "all trips seen")
    assert interlock.self_test_passed is True and state_of(interlock) is RigState.READY
    assert last_cause(interlock) == "self-test passed: all trips seen"
    interlock.begin_self_test()
    assert interlock.self_test_passed is False


def test_a_failed_self_test_is_a_fault_in_self_test_mode() -> None:
    interlock, _, _ = make_interlock(ready=False)
    interlock.set_links(pump=True, board=True)
    interlock.begin_self_test()
    interlock.end_self_test(False, "relay did not open")
    assert interlock.self_test_passed is False
    latched = interlock.latched
    assert latched is not None
    assert (latched.message, latched.mode) == ("self-test failed: relay did not open", "self_test")


def test_ending_a_self_test_that_is_not_running_changes_nothing() -> None:
    interlock, _, _ = make_interlock()
    interlock.end_self_test(False, "late report")
    assert interlock.state is RigState.READY and interlock.latched is None
    assert interlock.self_test_passed is True


# -- links --------------------------------------------------------------------------------


def test_links_that_stay_up_keep_the_rig_ready_and_active() -> None:
    interlock, _, _ = make_interlock()
    interlock.set_links(pump=True, board=True)
    assert interlock.state is RigState.READY
    interlock.motion_started(Action.IRRIGATE)
    interlock.set_links(board=True)
    assert state_of(interlock) is RigState.ACTIVE


def test_links_coming_back_without_a_passed_self_test_stay_offline() -> None:
    interlock, _, _ = make_interlock(ready=False)
    interlock.set_links(pump=True, board=True)
    assert interlock.state is RigState.OFFLINE
    interlock.self_test_passed = True
    interlock.set_links(pump=False)
    assert state_of(interlock) is RigState.OFFLINE


def test_link_changes_name_their_reason() -> None:
    interlock, _, _ = make_interlock()
    interlock.set_links(pump=False)
    assert last_cause(interlock) == "a device link is down"
    interlock.set_links(pump=True)
    assert last_cause(interlock) == "devices connected, self-test passed"


def test_a_link_loss_during_a_fault_leaves_the_fault_latched() -> None:
    interlock, _, _ = make_interlock()
    interlock.trip(StopCause.PUMP_ALARM, "alarm", mode="irrigating")
    interlock.set_links(board=False)
    assert interlock.state is RigState.FAULT


# -- checked motions ----------------------------------------------------------------------


async def test_infuse_without_a_volume_sets_volume_zero_and_clears_the_infused_count() -> None:
    clock = ManualClock(10.0)
    interlock, pump, _ = make_interlock(pump=DirectionRecordingPump(clock))
    await interlock.infuse(Action.IRRIGATE, 1.5)
    assert pump.calls == ["dir INFUSE", "rate 1.500", "volume 0", "clear INFUSE", "run"]
    assert interlock.state is RigState.ACTIVE
    assert last_cause(interlock) == "fluid.irrigate started"


async def test_restoring_pump_power_closes_the_relay() -> None:
    interlock, _, relay = make_interlock()
    await interlock.restore_pump_power()
    assert relay.calls == ["close"]


async def test_a_reset_with_nothing_latched_returns_none_and_keeps_the_state(
    caplog: pytest.LogCaptureFixture,
) -> None:
    interlock, _, relay = make_interlock()
    caplog.set_level(logging.INFO, LOGGER)
    assert await interlock.reset() is None
    assert interlock.state is RigState.READY
    assert relay.calls == ["reset_trip", "close"]
    assert not [m for _, m in messages(caplog) if m.startswith("reset")]


async def test_a_reset_names_the_operator_and_logs_what_it_cleared(
    caplog: pytest.LogCaptureFixture,
) -> None:
    interlock, _, _ = make_interlock()
    interlock.estop("pendant")
    caplog.set_level(logging.INFO, LOGGER)
    await interlock.reset()
    assert last_cause(interlock) == "reset by operator"
    assert (logging.INFO, "reset: cleared estop") in messages(caplog)


# -- the stop count, set-up at connect, the self-test's board actions ------------------------


def test_every_kind_of_stop_counts_once() -> None:
    interlock, _, _ = make_interlock()
    assert interlock.stops == 0
    interlock.trip(StopCause.OPERATOR, "stop", mode="irrigating")
    interlock.trip(StopCause.OPERATOR, "stop again", mode="stopped")
    assert interlock.stops == 2
    interlock.cut_pump_power(StopCause.PUMP_DID_NOT_STOP, "runaway", mode="stopped")
    assert interlock.stops == 3
    interlock.estop("button", mode="fault")
    assert interlock.stops == 4


async def test_connect_time_configuration_reaches_the_devices() -> None:
    interlock, pump, relay = make_interlock()
    await interlock.configure_pump(syringe_diameter_mm=4.78)
    await interlock.configure_board(
        watchdog_timeout_ms=200, cutoff_mmhg=60.0, resistance_stop=BOARD_STOP
    )
    assert pump.calls == ["diameter 4.78"]
    # the resistance stop's limits, with no flow: a reconnected board resumes nothing
    assert relay.calls == ["watchdog 200", "cutoff 60", "flow 0"]


async def test_configuration_is_refused_while_fluid_moves() -> None:
    interlock, pump, relay = make_interlock()
    interlock.motion_started(Action.IRRIGATE)
    with pytest.raises(InterlockDeniedError, match=r"^pump\.configure refused"):
        await interlock.configure_pump(syringe_diameter_mm=4.78)
    with pytest.raises(InterlockDeniedError, match=r"^board\.configure refused"):
        await interlock.configure_board(
            watchdog_timeout_ms=200, cutoff_mmhg=60.0, resistance_stop=BOARD_STOP
        )
    assert pump.calls == [] and relay.calls == []


class FlowRecordingRelay(RecordingRelay):
    """Records each flow the board is told with what the pump was doing at that moment."""

    def set_flow_nowait(self, message: SetFlow) -> float | None:
        pump = self.pump
        assert pump is not None
        state = f"running {pump.rate_ml_min:g}" if pump.running else "idle"
        self.calls.append(f"flow {message.flow_ml_min:g} ({state})")
        assert message.limit_mmhg_min_per_ml == BOARD_STOP.limit_mmhg_min_per_ml
        return self.clock.monotonic()


async def test_the_board_is_told_every_flow_the_pump_is_told_and_zero_at_every_stop() -> None:
    clock = ManualClock(10.0)
    pump = RecordingPump(clock)
    relay = FlowRecordingRelay(clock, pump)
    interlock, _, _ = make_interlock(pump=pump, relay=relay)
    await interlock.configure_board(
        watchdog_timeout_ms=200, cutoff_mmhg=60.0, resistance_stop=BOARD_STOP
    )
    await interlock.infuse(Action.IRRIGATE, 1.0)
    await interlock.set_rate(Action.IRRIGATE, 2.0)  # a rise: the board first
    await interlock.set_rate(Action.IRRIGATE, 0.5)  # a fall: the pump first
    interlock.trip(StopCause.RESISTANCE_LIMIT, "wall", mode="irrigating")
    await interlock.reset()
    interlock.estop("test")
    flows = [call for call in relay.calls if call.startswith("flow")]
    assert flows == [
        "flow 0 (idle)",  # configured
        "flow 1 (idle)",  # before the pump runs: armed from the first drop
        "flow 2 (running 1)",
        "flow 0.5 (running 0.5)",
        "flow 0 (idle)",  # the trip, after the pump's stop
        "flow 0 (idle)",  # the reset: recovery resumes no flow
        "flow 0 (idle)",  # the e-stop
    ]
    assert interlock.board_flow_ml_min == 0.0


async def test_a_board_that_cannot_be_told_the_flow_does_not_hold_up_a_stop() -> None:
    class DeafRelay(RecordingRelay):
        def set_flow_nowait(self, message: SetFlow) -> float | None:
            raise ConnectionError("board cable pulled")

    clock = ManualClock(10.0)
    interlock, pump, _ = make_interlock(relay=DeafRelay(clock))
    await interlock.configure_board(
        watchdog_timeout_ms=200, cutoff_mmhg=60.0, resistance_stop=BOARD_STOP
    )
    await interlock.infuse(Action.IRRIGATE, 1.0)
    interlock.trip(StopCause.RESISTANCE_LIMIT, "wall", mode="irrigating")
    assert pump.calls[-1] == "stop_nowait" and state_of(interlock) is RigState.FAULT


async def test_the_board_is_zeroed_and_re_armed_only_in_self_test() -> None:
    interlock, _, relay = make_interlock()
    with pytest.raises(InterlockDeniedError, match=r"^board\.zero refused"):
        await interlock.zero_pressure()
    with pytest.raises(InterlockDeniedError, match=r"^board\.rearm refused"):
        await interlock.rearm_board()
    assert relay.calls == []
    interlock.begin_self_test()
    await interlock.zero_pressure()
    await interlock.rearm_board()
    assert relay.calls == ["zero", "reset_trip"]


class StoppedMidwayPump(RecordingPump):
    """A pump whose rate exchange is answered while a stop comes from elsewhere."""

    interlock: Interlock | None = None

    async def set_rate(self, ml_min: float) -> None:
        await super().set_rate(ml_min)
        assert self.interlock is not None
        self.interlock.trip(StopCause.OPERATOR, "stopped meanwhile", mode="irrigating")


async def test_a_stop_during_a_motion_cancels_its_next_step_and_says_so() -> None:
    pump = StoppedMidwayPump(ManualClock(10.0))
    interlock, _, _ = make_interlock(pump=pump)
    pump.interlock = interlock
    with pytest.raises(MotionCancelledError) as raised:
        await interlock.infuse(Action.IRRIGATE, 1.0)
    assert raised.value.reason == "fluid.irrigate cancelled: a stop came while it started"
    assert "run" not in pump.calls


class RefusingPump(RecordingPump):
    async def set_rate(self, ml_min: float) -> None:
        raise PumpCommandError("OOR")


async def test_a_pump_refusal_during_a_motion_is_a_pump_fault_naming_it() -> None:
    interlock, _, _ = make_interlock(pump=RefusingPump(ManualClock(10.0)))
    with pytest.raises(PumpFaultError) as raised:
        await interlock.infuse(Action.IRRIGATE, 1.0)
    assert str(raised.value) == str(PumpCommandError("OOR"))
    assert isinstance(raised.value.__cause__, PumpCommandError)


class EstopHeldRelay(RecordingRelay):
    """A board whose e-stop button is still held: it refuses to reset its trip."""

    async def reset_trip(self) -> None:
        raise BoardCommandRejectedError(
            ResetTrip(), Nack(MsgId.RESET_TRIP, NackReason.ESTOP_PRESSED)
        )


async def test_a_reset_the_board_refuses_is_denied_in_words_and_keeps_the_latch() -> None:
    interlock, _, _ = make_interlock(relay=EstopHeldRelay(ManualClock(10.0)))
    interlock.estop("pendant", mode="stopped")
    with pytest.raises(ActuatorRefusedError, match=r"I/O board refused.*e-stop button still"):
        await interlock.reset()
    assert state_of(interlock) is RigState.ESTOP and interlock.latched is not None
