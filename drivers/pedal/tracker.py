"""Pedal logic with no I/O: raw readings with their times in, pedal events out.

- Debounce: a press counts once the pedal has been down for `press_debounce_s` without a break
  (a shorter blip, a bouncing contact, is no press). A release counts after `release_debounce_s`,
  0 by default: the pedal is a dead-man input, and a release must never wait (a bounce on release
  then gives one release and at most a blip that does not count as a press).
- Quick tap: a counted press released within `tap_max_s` also gives `PedalTapped` (after its
  release), as dVRK detects quick taps of its pedals.
- Stuck pedal: down for `stuck_after_s` gives `PedalStuck` and then `PedalReleased` with cause
  STUCK: from then on the pedal counts as released until it has really been let go
  (`PedalStuckCleared`); only then can it be pressed again. A PCsensor switch with a bad contact
  keeps reporting its key down, which is exactly this.
- Loss: `lost` releases every pressed pedal (cause UNPLUGGED): a lost pedal counts as released.

Times are the caller's clock (seconds). `next_deadline` tells the caller when to `poll` if no
report comes first: the end of a debounce or a stuck limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum

from drivers.pedal.reports import Pedal


class ReleaseCause(StrEnum):
    RELEASED = "released"
    STUCK = "stuck"
    UNPLUGGED = "unplugged"


@dataclass(frozen=True)
class PedalPressed:
    pedal: Pedal
    at_s: float


@dataclass(frozen=True)
class PedalReleased:
    pedal: Pedal
    at_s: float
    held_s: float
    cause: ReleaseCause


@dataclass(frozen=True)
class PedalTapped:
    pedal: Pedal
    at_s: float
    held_s: float


@dataclass(frozen=True)
class PedalStuck:
    pedal: Pedal
    at_s: float
    held_s: float


@dataclass(frozen=True)
class PedalStuckCleared:
    pedal: Pedal
    at_s: float


@dataclass(frozen=True)
class PedalUnplugged:
    at_s: float


PedalEvent = (
    PedalPressed | PedalReleased | PedalTapped | PedalStuck | PedalStuckCleared | PedalUnplugged
)


@dataclass(frozen=True)
class PedalTiming:
    press_debounce_s: float = 0.03
    release_debounce_s: float = 0.0
    tap_max_s: float = 0.3
    stuck_after_s: float = 300.0

    def __post_init__(self) -> None:
        for name in ("press_debounce_s", "release_debounce_s", "tap_max_s", "stuck_after_s"):
            value = getattr(self, name)
            if value < 0:
                raise ValueError(f"pedal timing {name} = {value}: expected >= 0")
        if self.stuck_after_s <= self.tap_max_s:
            raise ValueError(
                f"pedal timing stuck_after_s = {self.stuck_after_s}: expected above tap_max_s "
                f"= {self.tap_max_s}"
            )


class _State(Enum):
    RELEASED = "released"
    PRESSED = "pressed"
    STUCK = "stuck"


@dataclass
class _Track:
    raw_down: bool = False
    raw_since_s: float = 0.0
    state: _State = _State.RELEASED
    pressed_at_s: float = 0.0


class PedalTracker:
    def __init__(self, timing: PedalTiming | None = None) -> None:
        self.timing = timing if timing is not None else PedalTiming()
        self._tracks = {pedal: _Track() for pedal in Pedal}

    @property
    def pressed(self) -> frozenset[Pedal]:
        """The pedals that count as pressed now."""
        return frozenset(p for p, t in self._tracks.items() if t.state is _State.PRESSED)

    @property
    def stuck(self) -> frozenset[Pedal]:
        return frozenset(p for p, t in self._tracks.items() if t.state is _State.STUCK)

    def feed(self, down: frozenset[Pedal], now_s: float) -> list[PedalEvent]:
        """A report: `down` are the pedals the device says are down at `now_s`."""
        for pedal, track in self._tracks.items():
            is_down = pedal in down
            if is_down != track.raw_down:
                track.raw_down = is_down
                track.raw_since_s = now_s
        return self.poll(now_s)

    def poll(self, now_s: float) -> list[PedalEvent]:
        events: list[PedalEvent] = []
        timing = self.timing
        # each condition is written as the deadline `next_deadline` gives, so that a poll at that
        # deadline fires whatever the rounding of the times
        for pedal, track in self._tracks.items():
            released_for = (
                not track.raw_down and now_s >= track.raw_since_s + timing.release_debounce_s
            )
            if track.state is _State.RELEASED:
                if track.raw_down and now_s >= track.raw_since_s + timing.press_debounce_s:
                    track.state = _State.PRESSED
                    track.pressed_at_s = track.raw_since_s
                    events.append(PedalPressed(pedal, now_s))
            elif track.state is _State.PRESSED:
                if released_for:
                    held_s = track.raw_since_s - track.pressed_at_s
                    track.state = _State.RELEASED
                    events.append(PedalReleased(pedal, now_s, held_s, ReleaseCause.RELEASED))
                    if held_s <= timing.tap_max_s:
                        events.append(PedalTapped(pedal, now_s, held_s))
                elif track.raw_down and now_s >= track.pressed_at_s + timing.stuck_after_s:
                    held_s = now_s - track.pressed_at_s
                    track.state = _State.STUCK
                    events.append(PedalStuck(pedal, now_s, held_s))
                    events.append(PedalReleased(pedal, now_s, held_s, ReleaseCause.STUCK))
            elif released_for:
                track.state = _State.RELEASED
                events.append(PedalStuckCleared(pedal, now_s))
        return events

    def next_deadline(self) -> float | None:
        """When `poll` could next produce an event without a new report; None if never."""
        timing = self.timing
        deadlines: list[float] = []
        for track in self._tracks.values():
            if track.state is _State.RELEASED and track.raw_down:
                deadlines.append(track.raw_since_s + timing.press_debounce_s)
            elif track.state is _State.PRESSED:
                if track.raw_down:
                    deadlines.append(track.pressed_at_s + timing.stuck_after_s)
                else:
                    deadlines.append(track.raw_since_s + timing.release_debounce_s)
            elif track.state is _State.STUCK and not track.raw_down:
                deadlines.append(track.raw_since_s + timing.release_debounce_s)
        return min(deadlines, default=None)

    def lost(self, now_s: float) -> list[PedalEvent]:
        """The device is gone: every pressed pedal is released, then `PedalUnplugged`."""
        events: list[PedalEvent] = []
        for pedal, track in self._tracks.items():
            if track.state is _State.PRESSED:
                events.append(
                    PedalReleased(pedal, now_s, now_s - track.pressed_at_s, ReleaseCause.UNPLUGGED)
                )
            self._tracks[pedal] = _Track()
        events.append(PedalUnplugged(now_s))
        return events
