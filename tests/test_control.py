"""Control of the rig: one station at a time, taken over only explicitly, every change recorded."""

from __future__ import annotations

import pytest

from drivers.clock import REAL_CLOCK
from rig.api.control import ControlConflictError, ControlOwnership
from rig.api.roles import Role


def test_with_nobody_in_control_every_station_may_command() -> None:
    control = ControlOwnership(REAL_CLOCK)
    assert control.refusal(Role.SURGEON, "fluid.irrigate") is None
    assert control.refusal(Role.ENGINEER, "fluid.irrigate") is None


def test_the_station_in_control_alone_may_command() -> None:
    control = ControlOwnership(REAL_CLOCK)
    handover = control.take(Role.SURGEON, "console-1", force=False)
    assert handover is not None
    event = handover.as_event()
    assert (event.previous, event.holder, event.client, event.forced) == (
        None,
        "surgeon",
        "console-1",
        False,
    )
    assert control.refusal(Role.SURGEON, "fluid.irrigate") is None
    refusal = control.refusal(Role.ENGINEER, "fluid.irrigate")
    assert refusal is not None and "surgeon station has control" in refusal
    assert control.as_dict() == {"holder": "surgeon", "client": "console-1"}


def test_a_takeover_needs_force_and_is_recorded_as_forced() -> None:
    control = ControlOwnership(REAL_CLOCK)
    control.take(Role.SURGEON, "console-1", force=False)
    with pytest.raises(ControlConflictError, match="surgeon station has control"):
        control.take(Role.ENGINEER, "cli-9", force=False)
    assert control.holder is Role.SURGEON
    handover = control.take(Role.ENGINEER, "cli-9", force=True)
    assert handover is not None and handover.forced and handover.previous is Role.SURGEON
    assert control.refusal(Role.SURGEON, "fluid.bolus") is not None


def test_taking_control_again_or_releasing_what_one_does_not_hold_changes_nothing() -> None:
    control = ControlOwnership(REAL_CLOCK)
    assert control.release(Role.SURGEON, "console-1") is None
    control.take(Role.SURGEON, "console-1", force=False)
    assert control.take(Role.SURGEON, "console-2", force=False) is None
    assert control.release(Role.ENGINEER, "cli-9") is None
    assert control.holder is Role.SURGEON
    handover = control.release(Role.SURGEON, "console-1")
    assert handover is not None and handover.holder is None
    assert control.refusal(Role.ENGINEER, "fluid.irrigate") is None
