"""The interlock and the basket: its rules, its halt on a fault and on the e-stop, its moves.

The Tic is a recording fake; what is under test is the arbiter's logic, and each hazard test
fails when its control is removed (the commit that added them says how that was checked).
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from drivers.clock import ManualClock
from drivers.tic.codec import Field, HomeDirection
from rig.fluid.events import StopCause
from rig.safety.interlock import BasketLimits, Interlock, InterlockDeniedError, MotionCancelledError
from rig.safety.rules import Action, Facts, refusal
from rig.safety.states import RigState
from tests.fluid.plant import RecordingPump, RecordingRelay
from tests.safety.test_interlock import HEALTHY


class RecordingTic:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.on_target: object = None

    def halt_and_hold_nowait(self) -> None:
        self.calls.append("halt")

    async def halt_and_set_position(self, position_usteps: int) -> None:
        self.calls.append(f"hold at {position_usteps}")

    async def configure_command_timeout(self, timeout_ms: int) -> None:
        self.calls.append(f"timeout {timeout_ms}")

    async def configure_settings(self, values: Mapping[Field, int]) -> None:
        self.calls.append("settings " + ", ".join(f"{f.name} {v}" for f, v in values.items()))

    async def go_home(self, direction: HomeDirection = HomeDirection.REVERSE) -> None:
        self.calls.append(f"home {direction.name.lower()}")

    async def set_max_accel(self, accel_usteps_per_100s2: int) -> None:
        self.calls.append("accel")

    async def set_max_decel(self, decel_usteps_per_100s2: int) -> None:
        self.calls.append("decel")

    async def set_current_limit_code(self, code: int) -> None:
        self.calls.append("current")

    async def energize(self) -> None:
        self.calls.append("energize")

    async def set_max_speed(self, speed_usteps_per_10ks: int) -> None:
        self.calls.append(f"speed {speed_usteps_per_10ks}")

    async def exit_safe_start(self) -> None:
        self.calls.append("exit safe start")

    async def set_target_position(self, position_usteps: int) -> None:
        self.calls.append(f"target {position_usteps}")
        if callable(self.on_target):
            self.on_target()


def make(
    *, video: bool | None = True, moving: bool = True, tic: RecordingTic | None = None
) -> tuple[Interlock, RecordingTic]:
    clock = ManualClock(10.0)
    tic = tic if tic is not None else RecordingTic()
    interlock = Interlock(RecordingPump(clock), RecordingRelay(clock), tic)
    interlock.fluid_facts = lambda: HEALTHY
    interlock.set_video_live(video)
    interlock.basket_moving = lambda: moving
    interlock.self_test_passed = True
    interlock.set_links(pump=True, board=True, basket=True)
    return interlock, tic


FACTS = Facts(
    links=frozenset({"pump", "board", "basket"}),
    pressure_fresh=True,
    line_primed=True,
    saline_under_cap=True,
    contrast_under_cap=True,
    video_live=True,
)


@pytest.mark.hazard("H25")
@pytest.mark.parametrize("video", [False, None])
def test_closing_needs_live_video(video: bool | None) -> None:
    facts = Facts(**{**FACTS.__dict__, "video_live": video})
    assert refusal(Action.BASKET_CLOSE, RigState.READY, facts) == (
        "basket.close refused: no live video (the basket closes only in sight)"
    )
    assert refusal(Action.BASKET_CLOSE, RigState.READY, FACTS) is None


@pytest.mark.hazard("H25", "H18")
@pytest.mark.parametrize("state", [RigState.FAULT, RigState.ESTOP, RigState.OFFLINE])
@pytest.mark.parametrize("action", [Action.BASKET_CLOSE, Action.BASKET_OPEN, Action.BASKET_RETRACT])
def test_the_basket_moves_only_on_a_rig_without_a_fault(state: RigState, action: Action) -> None:
    assert f"the rig is {state}" in (refusal(action, state, FACTS) or "")


def test_the_basket_needs_its_link() -> None:
    facts = Facts(**{**FACTS.__dict__, "links": frozenset({"pump", "board"})})
    assert "not connected" in (refusal(Action.BASKET_OPEN, RigState.READY, facts) or "")


@pytest.mark.hazard("H18")
def test_a_latched_fault_halts_a_moving_basket_and_an_operator_stop_does_not() -> None:
    interlock, tic = make()
    interlock.trip(StopCause.OPERATOR, "stop", mode="irrigate")
    assert tic.calls == []
    interlock.trip(StopCause.RESISTANCE_LIMIT, "wall", mode="irrigate")
    assert tic.calls == ["halt"]


def test_a_basket_at_rest_is_not_halted_by_a_fault() -> None:
    interlock, tic = make(moving=False)
    interlock.trip(StopCause.RESISTANCE_LIMIT, "wall", mode="irrigate")
    assert tic.calls == []


@pytest.mark.hazard("H16")
def test_the_estop_halts_the_basket() -> None:
    interlock, tic = make(moving=False)
    event = interlock.estop("test")
    assert tic.calls == ["halt"]
    assert event.figures["basket_halt"] == "done"


async def test_a_move_is_speed_safe_start_target_in_that_order() -> None:
    interlock, tic = make()
    await interlock.configure_basket(BasketLimits(500, 100, 100, 10, 10_000_000, 2_000_000))
    await interlock.move_basket(Action.BASKET_OPEN, 2000, 20_000_000)
    assert tic.calls == [
        "timeout 500",
        "settings homing speed towards 10000000, homing speed away 2000000",
        "accel",
        "decel",
        "current",
        "energize",
        "speed 20000000",
        "exit safe start",
        "target 2000",
    ]


@pytest.mark.hazard("H18")
async def test_a_stop_while_the_target_is_on_the_wire_halts_what_it_started() -> None:
    interlock, tic = make(moving=False)
    tic.on_target = lambda: interlock.trip(StopCause.RESISTANCE_LIMIT, "wall", mode="irrigate")
    with pytest.raises(MotionCancelledError):
        await interlock.move_basket(Action.BASKET_CLOSE, 8000, 10_000_000)
    assert tic.calls[-1] == "halt"


async def test_a_refused_move_sends_nothing() -> None:
    interlock, tic = make(video=False)
    with pytest.raises(InterlockDeniedError, match="no live video"):
        await interlock.move_basket(Action.BASKET_CLOSE, 8000, 10_000_000)
    assert tic.calls == []


async def test_homing_is_a_move_under_its_rule() -> None:
    interlock, tic = make()
    await interlock.home_basket()
    assert tic.calls == ["exit safe start", "home reverse"]
    interlock.trip(StopCause.INTERNAL_FAULT, "a fault", mode="idle")
    tic.calls.clear()
    with pytest.raises(InterlockDeniedError, match=r"basket\.home refused"):
        await interlock.home_basket()
    assert tic.calls == []


async def test_steering_sends_only_the_target_and_meets_the_rules() -> None:
    interlock, tic = make()
    await interlock.steer_basket(Action.BASKET_CLOSE, 2400)
    assert tic.calls == ["target 2400"]  # no exit of safe start: a stopped Tic stays stopped
    interlock.set_video_live(False)
    with pytest.raises(InterlockDeniedError, match="no live video"):
        await interlock.steer_basket(Action.BASKET_CLOSE, 2800)
    assert tic.calls == ["target 2400"]
