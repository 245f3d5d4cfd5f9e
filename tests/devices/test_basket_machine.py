"""The basket's state machine on explicit values and times (rig/devices/basket_machine.py)."""

from __future__ import annotations

import pytest

from rig.devices.basket_machine import (
    BasketConflictError,
    BasketGeometry,
    BasketMachine,
    BasketState,
    Reading,
)

GEOMETRY = BasketGeometry(
    retracted_usteps=0,
    open_usteps=2000,
    closed_usteps=8000,
    open_speed=20_000_000,
    close_speed=10_000_000,
    grasp_error_usteps=100,
    force_limit_usteps=400,
)


def _at(position: int, encoder: int | None = None, velocity: int = 0, errors: int = 0) -> Reading:
    return Reading(position, position if encoder is None else encoder, velocity, errors)


def _open_basket() -> BasketMachine:
    machine = BasketMachine(GEOMETRY)
    machine.recovered(_at(0), "connected", 0.0)
    machine.started(machine.plan("open"), 0.1)
    machine.on_reading(_at(2000), 1.2)
    assert machine.state is BasketState.OPEN
    return machine


def test_open_close_on_nothing_and_retract_arrive_in_turn() -> None:
    machine = _open_basket()
    move = machine.plan("close")
    assert (move.target_usteps, move.speed) == (8000, GEOMETRY.close_speed)
    machine.started(move, 2.0)
    assert machine.on_reading(_at(5000, velocity=10_000_000), 5.0) is None
    change = machine.on_reading(_at(8000), 8.0)
    assert change is not None and change.to_state is BasketState.CLOSED
    assert not machine.holds_lesion
    machine.started(machine.plan("retract"), 9.0)
    change = machine.on_reading(_at(1), 12.0)
    assert change is not None and change.to_state is BasketState.RETRACTED


@pytest.mark.hazard("H17")
def test_a_position_error_while_closing_is_a_grasp_held_at_the_encoder() -> None:
    machine = _open_basket()
    machine.started(machine.plan("close"), 2.0)
    assert machine.on_reading(_at(5050, 5000, velocity=10_000_000), 5.0) is None  # under 100
    change = machine.on_reading(_at(5120, 5000, velocity=10_000_000), 5.02)
    assert change is not None
    assert change.to_state is BasketState.CAPTURED
    assert change.hold_at_usteps == 5000 and change.error_usteps == 120
    assert not change.at_force_limit
    assert machine.holds_lesion and not machine.moving


@pytest.mark.hazard("H17")
def test_a_grasp_past_the_force_limit_says_so() -> None:
    machine = _open_basket()
    machine.started(machine.plan("close"), 2.0)
    change = machine.on_reading(_at(5450, 5000, velocity=10_000_000), 5.0)
    assert change is not None and change.at_force_limit and change.hold_at_usteps == 5000


def test_a_position_error_while_opening_is_not_a_grasp() -> None:
    machine = BasketMachine(GEOMETRY)
    machine.recovered(_at(0), "connected", 0.0)
    machine.started(machine.plan("open"), 0.1)
    assert machine.on_reading(_at(1500, 1000, velocity=20_000_000), 0.5) is None
    assert machine.state is BasketState.OPENING


@pytest.mark.hazard("H18")
def test_a_fault_holds_the_lesion_and_recovery_returns_to_captured_without_a_move() -> None:
    machine = _open_basket()
    machine.started(machine.plan("close"), 2.0)
    machine.on_reading(_at(5150, 5000), 5.0)
    fault = machine.fault("estop: emergency stop", 6.0)
    assert fault is not None and fault.to_state is BasketState.FAULT
    for op in ("open", "close", "retract"):
        with pytest.raises(BasketConflictError, match="reset the rig first"):
            machine.plan(op)
    assert machine.on_reading(_at(5000), 7.0) is None  # a status changes nothing in FAULT
    back = machine.recovered(_at(5000), "rig reset", 8.0)
    assert back is not None and back.to_state is BasketState.CAPTURED
    assert machine.holds_lesion and machine.move is None


def test_a_fault_mid_close_on_nothing_recovers_to_closed_and_starts_nothing() -> None:
    machine = _open_basket()
    machine.started(machine.plan("close"), 2.0)
    machine.fault("internal_fault", 3.0)
    back = machine.recovered(_at(4100), "rig reset", 4.0)
    assert back is not None and back.to_state is BasketState.CLOSED
    assert machine.move is None and not machine.moving


def test_the_tics_own_error_while_moving_is_a_fault() -> None:
    machine = _open_basket()
    machine.started(machine.plan("close"), 2.0)
    change = machine.on_reading(_at(3000, errors=0x20), 2.5)
    assert change is not None and change.to_state is BasketState.FAULT


def test_a_lost_link_is_a_fault_and_an_unknown_basket_stays_unknown() -> None:
    machine = BasketMachine(GEOMETRY)
    assert machine.lost("link lost", 0.0) is None
    with pytest.raises(BasketConflictError, match="the basket is unknown"):
        machine.plan("open")
    machine = _open_basket()
    change = machine.lost("link lost", 3.0)
    assert change is not None and change.to_state is BasketState.FAULT


def test_a_halt_on_request_leaves_a_moving_basket_closed_where_it_stands() -> None:
    machine = _open_basket()
    assert machine.halted(1.5) is None  # at rest: nothing to halt
    machine.started(machine.plan("close"), 2.0)
    change = machine.halted(2.1)
    assert change is not None and change.to_state is BasketState.CLOSED
    assert machine.move is None and not machine.holds_lesion
    assert machine.plan("open").target_usteps == GEOMETRY.open_usteps


def test_close_only_from_open() -> None:
    machine = BasketMachine(GEOMETRY)
    machine.recovered(_at(0), "connected", 0.0)
    with pytest.raises(BasketConflictError, match=r"basket.close refused: the basket is retracted"):
        machine.plan("close")


@pytest.mark.hazard("H17")
def test_a_close_is_leashed_to_the_force_limit_past_the_encoder() -> None:
    machine = _open_basket()
    move = machine.plan("close")
    assert machine.leashed(move) == 2000 + GEOMETRY.force_limit_usteps
    machine.started(move, 2.0)
    machine.on_reading(_at(2300, velocity=10_000_000), 2.3)
    assert machine.target_now() == 2700
    machine.on_reading(_at(7900, velocity=10_000_000), 7.9)
    assert machine.target_now() == GEOMETRY.closed_usteps  # never past the close's own target
    machine.on_reading(_at(8000), 8.0)
    assert machine.target_now() is None  # arrived: nothing under way


def test_opening_and_retracting_are_not_leashed() -> None:
    machine = _open_basket()
    assert machine.leashed(machine.plan("retract")) == GEOMETRY.retracted_usteps


def test_an_unhomed_basket_only_homes_and_is_retracted_at_the_switch() -> None:
    machine = BasketMachine(GEOMETRY)
    change = machine.unhomed(_at(0), "connected: position unknown", 0.0)
    assert change is not None and change.to_state is BasketState.UNHOMED
    for op in ("open", "close", "retract"):
        with pytest.raises(BasketConflictError, match=r"basket\.home first"):
            machine.plan(op)
    move = machine.plan("home")
    machine.started(move, 0.1)
    assert machine.state is BasketState.HOMING and machine.target_now() is None
    homing = Reading(0, 0, -10_000_000, 0, homing=True, position_uncertain=True)
    assert machine.on_reading(homing, 0.5) is None
    change = machine.on_reading(_at(0), 1.0)
    assert change is not None and change.to_state is BasketState.RETRACTED
