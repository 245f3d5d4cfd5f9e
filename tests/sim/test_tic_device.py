"""The emulated Tic's model on explicit times: motion limits, the command timeout, soft errors."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from drivers.sim.camera.scene import DuctSceneParams
from drivers.sim.camera.stream import CameraSettings
from drivers.sim.rig_sim import RigSimulator, SimSettings
from drivers.sim.tic_device import StageSettings, TicDefaults, TicModel
from drivers.sim.usb.rig_bus import TIP_USTEPS, USTEPS_PER_MM, basket_stage, lesion_usteps
from drivers.tic.codec import (
    ACCEL_UNITS_PER_HZ2,
    SPEED_UNITS_PER_HZ,
    OperationState,
    SoftErrorResponse,
    TicCommand,
    TicErrors,
    Var,
    get_variables,
    quick,
    set_max_decel,
    set_target_position,
    set_target_velocity,
)

SPEED = 20_000_000  # 2000 usteps/s
ACCEL = 2_000_000  # 20000 usteps/s^2
DECEL = 1_000_000  # 10000 usteps/s^2


def running_model(
    timeout_ms: int = 0,
    response: SoftErrorResponse = SoftErrorResponse.DECEL_TO_HOLD,
    stage: StageSettings | None = None,
) -> TicModel:
    model = TicModel(
        stage,
        TicDefaults(
            command_timeout_ms=timeout_ms,
            max_speed_usteps_per_10ks=SPEED,
            max_accel_usteps_per_100s2=ACCEL,
            max_decel_usteps_per_100s2=DECEL,
            soft_error_response=response,
        ),
    )
    model.power_up(0.0)
    model.handle(quick(TicCommand.EXIT_SAFE_START), 0.0)
    return model


def trace(
    model: TicModel, until_s: float, step_s: float = 0.001
) -> list[tuple[float, float, float]]:
    """(time, position, velocity) every `step_s`, stepping the model."""
    out = []
    t = model._now_s
    while t < until_s:
        t += step_s
        model.advance(t)
        out.append((t, model.position_usteps, model.velocity_usteps_s))
    return out


def test_velocity_ramps_at_max_accel_and_stops_at_max_speed() -> None:
    model = running_model()
    model.handle(set_target_velocity(SPEED), 0.0)
    points = trace(model, 0.2)
    accel = ACCEL / ACCEL_UNITS_PER_HZ2
    for (_, _, v0), (_, _, v1) in itertools.pairwise(points):
        assert v1 - v0 <= accel * 0.001 + 1e-9
    assert model.velocity_usteps_s == pytest.approx(SPEED / SPEED_UNITS_PER_HZ)
    assert points[49][2] == pytest.approx(accel * 0.050, rel=0.05)


def test_a_position_move_lands_on_its_target_without_overshoot() -> None:
    model = running_model()
    model.handle(set_target_position(1000), 0.0)
    points = trace(model, 1.5)
    positions = [p for _, p, _ in points]
    assert max(positions) <= 1000.0
    assert positions == sorted(positions)
    assert model.position_usteps == 1000.0 and model.velocity_usteps_s == 0.0
    assert max(abs(v) for _, _, v in points) <= SPEED / SPEED_UNITS_PER_HZ


def test_the_command_timeout_fires_once_its_period_has_passed_since_the_last_resetter() -> None:
    model = running_model(timeout_ms=500)
    model.handle(quick(TicCommand.RESET_COMMAND_TIMEOUT), 1.0)
    model.handle(set_max_decel(DECEL), 1.3)  # not a resetter
    model.advance(1.499)
    assert TicErrors.COMMAND_TIMEOUT not in model.errors
    model.advance(1.503)
    assert model.errors == TicErrors.COMMAND_TIMEOUT | TicErrors.SAFE_START_VIOLATION
    assert model.operation_state is OperationState.SOFT_ERROR


def test_a_timeout_decelerates_at_max_decel_to_hold() -> None:
    model = running_model(timeout_ms=300)
    model.handle(set_target_velocity(SPEED), 0.0)
    model.advance(0.29)
    assert model.velocity_usteps_s == pytest.approx(2000.0)
    points = trace(model, 1.0)
    decel = DECEL / ACCEL_UNITS_PER_HZ2
    for (_, _, v0), (_, _, v1) in itertools.pairwise(points):
        assert v0 - v1 <= decel * 0.001 + 1e-9
    stop_s = next(t for t, _, v in points if v == 0.0)
    assert stop_s == pytest.approx(0.3 + 2000.0 / decel, abs=0.01)
    held = model.position_usteps
    model.advance(2.0)
    assert model.position_usteps == held


@pytest.mark.parametrize(
    "response", [SoftErrorResponse.HALT_AND_HOLD, SoftErrorResponse.DEENERGIZE]
)
def test_abrupt_soft_error_responses_stop_at_once_and_lose_the_position(
    response: SoftErrorResponse,
) -> None:
    model = running_model(timeout_ms=300, response=response)
    model.handle(set_target_velocity(SPEED), 0.0)
    model.advance(0.302)
    assert model.velocity_usteps_s == 0.0
    assert model.position_uncertain
    assert model.energized is (response is SoftErrorResponse.HALT_AND_HOLD)


def test_an_obstacle_stalls_the_stage_while_the_counter_runs_on() -> None:
    model = running_model(stage=StageSettings(start_usteps=0.0, obstacle_usteps=300.0))
    model.handle(set_target_position(1000), 0.0)
    model.advance(2.0)
    assert model.position_usteps == 1000.0
    assert model.physical_usteps == 300.0
    assert model.lost_usteps == pytest.approx(700.0)
    block = model.handle(get_variables(0, 0x3D), 2.0)
    assert Var.CURRENT_POSITION.unpack(block) == 1000
    assert Var.ENCODER_POSITION.unpack(block) == 300


def test_reading_with_clear_errors_occurred_clears_them_after_the_read() -> None:
    model = running_model(timeout_ms=100)
    model.advance(0.2)
    block = model.handle(get_variables(0x04, 4, clear_errors_occurred=True), 0.2)
    assert TicErrors.COMMAND_TIMEOUT in TicErrors(Var.ERRORS_OCCURRED.unpack(block, 0x04))
    assert model.errors_occurred == TicErrors(0)


def test_the_lesion_on_the_stage_is_where_the_scene_puts_the_papilloma() -> None:
    # The default scene: the papilloma 2.5 mm ahead of the tip, 4000 usteps past the tip.
    depth = DuctSceneParams().papilloma_depth_mm
    tip = CameraSettings().depth_mm
    assert lesion_usteps(depth, tip) == TIP_USTEPS + (depth - tip) * USTEPS_PER_MM == 5000.0
    # The scope a millimetre further in: the lesion is that much closer to the basket.
    closer = basket_stage(depth, tip + 1.0).obstacle_usteps
    assert closer == pytest.approx(5000.0 - USTEPS_PER_MM)


def test_the_simulators_basket_meets_the_lesion_its_camera_shows(tmp_path: Path) -> None:
    tip = 30.0
    settings = SimSettings(link_dir=tmp_path / "dev", camera=CameraSettings(depth_mm=tip))
    sim = RigSimulator(settings)
    expected = lesion_usteps(DuctSceneParams().papilloma_depth_mm, tip)
    assert sim.usb.tic.model.stage.obstacle_usteps == expected


def test_a_basket_closed_on_the_lesion_and_drawn_back_takes_it_off_the_wall(
    tmp_path: Path,
) -> None:
    settings = SimSettings(link_dir=tmp_path / "dev", camera=CameraSettings(depth_mm=30.0))
    usb = RigSimulator(settings).usb
    model = usb.tic.model
    lesion = model.stage.obstacle_usteps
    assert lesion is not None
    model.physical_usteps = 2000.0  # open past the tip, short of the lesion
    usb.track_lesion()
    model.physical_usteps = 0.0  # retracted without closing on it: it stays on the wall
    usb.track_lesion()
    assert not usb.lesion_retrieved and model.stage.obstacle_usteps == lesion
    model.physical_usteps = lesion  # closed on it: the stage stopped there
    usb.track_lesion()
    model.physical_usteps = TIP_USTEPS + 1.0  # on the way back, still out of the scope
    usb.track_lesion()
    assert not usb.lesion_retrieved
    model.physical_usteps = 0.0  # inside the scope: the lesion with it
    usb.track_lesion()
    assert usb.lesion_retrieved and model.stage.obstacle_usteps is None
    assert usb.state()["basket"]["lesion_retrieved"]


def test_the_wall_in_the_baskets_way_is_not_retrieved(tmp_path: Path) -> None:
    settings = SimSettings(link_dir=tmp_path / "dev", camera=CameraSettings(depth_mm=30.0))
    usb = RigSimulator(settings).usb
    usb.place_obstacle(3000.0)
    usb.tic.model.physical_usteps = 3000.0
    usb.track_lesion()
    usb.tic.model.physical_usteps = 0.0
    usb.track_lesion()
    assert not usb.lesion_retrieved and usb.tic.model.stage.obstacle_usteps == 3000.0
