"""The typed events: every kind round-trips through its JSON, an unknown kind is refused, and
each model publishes the field names the events topic carried before there were models."""

from __future__ import annotations

import json
import typing

import pytest
from pydantic import ValidationError

from rig.events.models import (
    AlarmAcknowledged,
    AlarmCleared,
    AlarmRaised,
    ApiLost,
    ApiRestored,
    BasketChanged,
    CameraChanged,
    CommandAudit,
    CommandDenied,
    CommandRejected,
    ControlChanged,
    DaemonStarted,
    DeviceLinkChanged,
    Event,
    EventBase,
    FaultReset,
    JournalFault,
    LoopStalledAtRest,
    PedalChanged,
    ProcedureResumed,
    ProcedureStarted,
    ProcedureStopped,
    PumpPoweredUp,
    PumpSelfTestSilence,
    RequestRefused,
    SelfTestCompleted,
    SelfTestWatchdogTrip,
    SnapshotTaken,
    StateChanged,
    Stopped,
    StorageFault,
    StorageRestored,
    TrendSample,
    VideoSegment,
    parse_event,
)
from rig.fluid.events import StopCause, StopEvent
from rig.safety.selftest import CheckResult
from rig.safety.states import RigState, Transition

STOP = StopEvent(
    StopCause.PRESSURE_LIMIT,
    "pressure over 80 mmHg",
    mode="irrigate",
    figures={"pressure_mmhg": 81.5, "samples": 3, "sustained": True, "note": "x", "none": None},
    trigger_sample_t_us=1_000,
    stop_tx_done_us=3_500,
)

ONE_OF_EACH: list[EventBase] = [
    StateChanged(from_state=RigState.READY, to_state=RigState.ACTIVE, cause="irrigate started"),
    Stopped.of(STOP),
    FaultReset(cleared=StopCause.ESTOP),
    FaultReset(cleared=None),
    SelfTestCompleted(
        passed=False,
        checks=[CheckResult("watchdog", True, "tripped", 512.0), CheckResult("zero", False, "9")],
    ),
    SelfTestWatchdogTrip(board_t_us=123_456),
    CommandAudit(op="fluid.irrigate", role="operator", client="c1", ok=True),
    CommandAudit(
        op="fluid.bolus", role="operator", client=None, ok=False, error="denied", message="no"
    ),
    CommandDenied(op="fluid.irrigate", reason="not primed", state=RigState.READY),
    CommandDenied(op="debug.hang", role="observer", reason="the observer role may not"),
    CommandRejected(role="engineer", client="c2", reason="op: unknown"),
    CommandRejected(op="fluid.irrigate", reason="flow_ml_min 99 > 10"),
    RequestRefused(role="operator", client="c3", code="too_large", reason="4 MiB"),
    DeviceLinkChanged(device="pump", up=False, detail="link closed"),
    CameraChanged(live=False, detail="no frame for 412 ms"),
    ControlChanged(previous="surgeon", holder="engineer", client="cli-1", forced=True),
    PumpPoweredUp(alarm="RESET"),
    PumpSelfTestSilence(alarm="SAFE_MODE_TIMEOUT"),
    PedalChanged(change="released", pedal="left", cause="stuck", held_s=120.0),
    BasketChanged(
        from_state="closing",
        to_state="captured",
        cause="closed on something",
        position_usteps=5120,
        encoder_usteps=5000,
        error_usteps=120,
        holds_lesion=True,
    ),
    LoopStalledAtRest(stall_ms=196.0, limit_ms=100.0),
    ApiLost(reason="connection refused"),
    ApiRestored(down_s=2.5),
    JournalFault(reason="disk full"),
    DaemonStarted(rig_id="sim-1", opened_at_seq=41),
    ProcedureStarted(
        procedure="20261201T184312Z-3fa1",
        rig_id="sim-1",
        ref="study-7",
        role="surgeon",
        client="console",
        syringe_ml=10.0,
        syringe_diameter_mm=14.43,
        syringe_lot=None,
        primed=True,
    ),
    ProcedureResumed(procedure="20261201T184312Z-3fa1"),
    ProcedureStopped(
        procedure="20261201T184312Z-3fa1",
        role="surgeon",
        client=None,
        saline_ml=2.5,
        contrast_ml=0.4,
    ),
    TrendSample(
        procedure="20261201T184312Z-3fa1",
        pressure_mmhg=None,
        flow_ml_min=1.0,
        resistance_mmhg_min_per_ml=17.2,
        saline_ml=0.3,
        contrast_ml=0.0,
        mode="irrigate",
    ),
    SnapshotTaken(
        procedure=None,
        path="media/snap.png",
        note="empty duct",
        pressure_mmhg=12.0,
        flow_ml_min=0.0,
        saline_ml=1.0,
        contrast_ml=0.0,
    ),
    VideoSegment(procedure="p", path="media/seg-0001.avi", frames=900, duration_s=30.0),
    StorageFault(reason="disk full", free_mb=None),
    StorageRestored(free_mb=812.5),
    AlarmRaised(alarm="fault", priority="high", message="resistance"),
    AlarmAcknowledged(alarm="fault", role="surgeon", client="console", audio_paused_s=120.0),
    AlarmCleared(alarm="fault", active_s=12.5),
]


def _kinds_of_the_union() -> set[str]:
    members = typing.get_args(typing.get_args(Event)[0])
    return {member.model_fields["kind"].default for member in members}


def test_every_kind_of_the_union_has_an_example_here() -> None:
    assert {event.kind for event in ONE_OF_EACH} == _kinds_of_the_union()


@pytest.mark.parametrize("event", ONE_OF_EACH, ids=lambda e: e.kind)
def test_every_kind_round_trips_through_its_json(event: EventBase) -> None:
    stamped = event.model_copy(update={"seq": 7, "t_us": 1_234, "wall_time": 1.7e9})
    published = stamped.as_json()
    assert parse_event(published) == stamped
    assert parse_event(json.dumps(published)) == stamped
    assert parse_event(stamped.model_dump_json()) == stamped


def test_an_unknown_kind_is_refused_and_named() -> None:
    with pytest.raises(ValidationError) as raised:
        parse_event({"kind": "procedure_started", "seq": 1, "t_us": 0, "wall_time": 0.0})
    assert "procedure_started" in str(raised.value)
    with pytest.raises(ValidationError):
        parse_event({"seq": 1, "reason": "no kind at all"})


def test_a_field_the_kind_does_not_have_is_refused() -> None:
    with pytest.raises(ValidationError) as raised:
        parse_event({"kind": "api_lost", "reason": "gone", "severity": "high"})
    assert "severity" in str(raised.value)


def test_a_stop_publishes_the_stop_events_own_fields_plus_the_stamps() -> None:
    published = Stopped.of(STOP).as_json()
    assert set(published) == set(STOP.as_dict()) | {"kind", "seq", "t_us"}
    for name in ("cause", "message", "mode", "figures", "latched", "detection_to_stop_ms"):
        assert published[name] == STOP.as_dict()[name], name
    assert published["cause"] == "pressure_limit" and published["detection_to_stop_ms"] == 2.5


def test_the_command_audit_keeps_todays_field_names_and_adds_the_commands_fields() -> None:
    published = CommandAudit(
        op="fluid.irrigate", fields={"flow_ml_min": 1.0}, role="surgeon", client=None, ok=True
    ).as_json()
    assert set(published) == {
        "kind", "op", "fields", "role", "client", "ok", "error", "message", "seq", "t_us",
        "wall_time"
    }  # fmt: skip
    assert published["fields"] == {"flow_ml_min": 1.0}


def test_a_transition_names_both_states_and_the_cause() -> None:
    event = StateChanged.of(Transition(RigState.ACTIVE, RigState.FAULT, "pressure_limit", 1.0))
    assert event.as_json() | {"wall_time": 0.0} == {
        "kind": "transition",
        "from_state": "active",
        "to_state": "fault",
        "cause": "pressure_limit",
        "seq": 0,
        "t_us": 0,
        "wall_time": 0.0,
    }


def test_a_self_test_publishes_passed_and_its_checks_as_before() -> None:
    checks = [CheckResult("watchdog", True, "tripped", 512.0)]
    published = SelfTestCompleted(passed=True, checks=checks).as_json()
    assert published["checks"] == [
        {"name": "watchdog", "passed": True, "detail": "tripped", "measured_ms": 512.0}
    ]


def test_a_nan_figure_does_not_lose_the_stop() -> None:
    stop = StopEvent(
        StopCause.PLAUSIBILITY, "implausible", mode="irrigate", figures={"p": float("nan")}
    )
    assert Stopped.of(stop).as_json()["figures"] == {"p": None}
