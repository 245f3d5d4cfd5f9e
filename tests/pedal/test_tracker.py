"""Pedal logic on explicit times: debounce, quick taps, stuck pedals, loss."""

from __future__ import annotations

from typing import cast

import pytest

from drivers.pedal.reports import Pedal
from drivers.pedal.tracker import (
    PedalPressed,
    PedalReleased,
    PedalStuck,
    PedalStuckCleared,
    PedalTapped,
    PedalTiming,
    PedalTracker,
    PedalUnplugged,
    ReleaseCause,
)


def approx(seconds: float) -> float:
    """A time compared within float rounding (typed as the float the event holds)."""
    return cast(float, pytest.approx(seconds))


L = Pedal.LEFT
NONE: frozenset[Pedal] = frozenset()
LEFT = frozenset({L})
TIMING = PedalTiming(press_debounce_s=0.03, tap_max_s=0.3, stuck_after_s=10.0)


@pytest.fixture
def tracker() -> PedalTracker:
    return PedalTracker(TIMING)


def test_a_press_counts_once_it_has_lasted_the_debounce(tracker: PedalTracker) -> None:
    assert tracker.feed(LEFT, 1.0) == []
    assert tracker.next_deadline() == pytest.approx(1.03)
    assert tracker.poll(1.02) == []
    assert tracker.poll(1.03) == [PedalPressed(L, 1.03)]
    assert tracker.pressed == LEFT


def test_a_blip_shorter_than_the_debounce_is_no_press(tracker: PedalTracker) -> None:
    tracker.feed(LEFT, 1.0)
    assert tracker.feed(NONE, 1.01) == []
    assert tracker.poll(2.0) == []
    assert tracker.next_deadline() is None


def test_a_release_counts_at_once_and_a_bounce_after_it_is_no_new_press(
    tracker: PedalTracker,
) -> None:
    tracker.feed(LEFT, 1.0)
    tracker.poll(1.03)
    assert tracker.feed(NONE, 2.0) == [PedalReleased(L, 2.0, approx(1.0), ReleaseCause.RELEASED)]
    assert tracker.feed(LEFT, 2.005) == []
    assert tracker.feed(NONE, 2.010) == []
    assert tracker.poll(3.0) == []
    assert tracker.pressed == NONE


def test_a_release_debounce_delays_the_release_when_configured() -> None:
    tracker = PedalTracker(PedalTiming(press_debounce_s=0.0, release_debounce_s=0.02))
    tracker.feed(LEFT, 1.0)
    assert tracker.feed(NONE, 2.0) == []
    assert tracker.feed(LEFT, 2.01) == []  # came back within the debounce: still pressed
    assert tracker.pressed == LEFT


def test_a_short_press_is_also_a_quick_tap(tracker: PedalTracker) -> None:
    tracker.feed(LEFT, 1.0)
    tracker.poll(1.03)
    events = tracker.feed(NONE, 1.2)
    assert events == [
        PedalReleased(L, 1.2, approx(0.2), ReleaseCause.RELEASED),
        PedalTapped(L, 1.2, approx(0.2)),
    ]


def test_a_long_press_is_no_tap(tracker: PedalTracker) -> None:
    tracker.feed(LEFT, 1.0)
    tracker.poll(1.03)
    events = tracker.feed(NONE, 1.5)
    assert [type(e) for e in events] == [PedalReleased]


def test_a_pedal_held_past_the_limit_is_stuck_and_counts_as_released_until_let_go(
    tracker: PedalTracker,
) -> None:
    tracker.feed(LEFT, 1.0)
    tracker.poll(1.03)
    assert tracker.next_deadline() == pytest.approx(11.0)
    assert tracker.poll(10.99) == []
    assert tracker.poll(11.0) == [
        PedalStuck(L, 11.0, approx(10.0)),
        PedalReleased(L, 11.0, approx(10.0), ReleaseCause.STUCK),
    ]
    assert tracker.pressed == NONE and tracker.stuck == LEFT
    assert tracker.feed(LEFT, 12.0) == []  # more reports of the key down change nothing
    assert tracker.feed(NONE, 13.0) == [PedalStuckCleared(L, 13.0)]
    tracker.feed(LEFT, 14.0)
    assert tracker.poll(14.03) == [PedalPressed(L, 14.03)]


def test_losing_the_device_releases_every_pressed_pedal(tracker: PedalTracker) -> None:
    tracker.feed(frozenset({Pedal.LEFT, Pedal.RIGHT}), 1.0)
    tracker.poll(1.03)
    events = tracker.lost(2.0)
    assert events == [
        PedalReleased(Pedal.LEFT, 2.0, approx(1.0), ReleaseCause.UNPLUGGED),
        PedalReleased(Pedal.RIGHT, 2.0, approx(1.0), ReleaseCause.UNPLUGGED),
        PedalUnplugged(2.0),
    ]
    assert tracker.pressed == NONE


def test_timing_is_checked_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="press_debounce_s = -1"):
        PedalTiming(press_debounce_s=-1)
    with pytest.raises(ValueError, match=r"stuck_after_s = 0\.2: expected above tap_max_s"):
        PedalTiming(stuck_after_s=0.2)
