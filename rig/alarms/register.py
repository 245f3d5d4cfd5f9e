"""The active alarms: raised and cleared by the journal's events, acknowledged by a person.

Acknowledging pauses the audible signal for AUDIO_PAUSE_S and never clears the visual one:
the alarm stays in the list, and on the console, while its condition lasts (IEC 60601-1-8,
clinical.md). Every raise, acknowledgement and clearing is an event of its own in the journal,
with its time, so the record shows how long each alarm lasted and who silenced it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from drivers.transport.mqtt import JsonObject
from rig.alarms.conditions import Clear, Priority, Raise, conditions_of
from rig.events.models import AlarmAcknowledged, AlarmCleared, AlarmRaised, EventBase

AUDIO_PAUSE_S = 120.0
"""How long an acknowledgement silences an alarm: IEC 60601-1-8 lets the manufacturer set the
AUDIO PAUSED interval; two minutes is the common default of infusion pumps and monitors."""


@dataclass(frozen=True)
class ActiveAlarm:
    alarm: str
    priority: Priority
    message: str
    raised_wall_time: float
    raised_seq: int
    silenced_until: float | None = None
    """Wall time until which the audible signal is paused (acknowledged), or None."""

    def as_dict(self, now: float) -> JsonObject:
        silenced = self.silenced_until is not None and self.silenced_until > now
        return {
            "id": self.alarm,
            "priority": self.priority.value,
            "message": self.message,
            "raised": self.raised_wall_time,
            "acknowledged": self.silenced_until is not None,
            "audio_paused_until": self.silenced_until if silenced else None,
        }


class UnknownAlarmError(LookupError):
    pass


class AlarmRegister:
    def __init__(
        self,
        record: Callable[[EventBase], EventBase],
        wall_time: Callable[[], float],
        on_change: Callable[[], None],
    ) -> None:
        """`on_change`: the alarms changed (the rig's state is published again at once: the
        console must show a new alarm within 200 ms)."""
        self._record = record
        self._wall_time = wall_time
        self._on_change = on_change
        self._active: dict[str, ActiveAlarm] = {}

    def on_event(self, event: EventBase) -> None:
        """Every journaled event passes here (its own alarm events change nothing)."""
        for change in conditions_of(event):
            if isinstance(change, Raise):
                self._raise(change)
            elif isinstance(change, Clear):
                self._clear(change.alarm, event)

    def acknowledge(self, alarm: str | None, role: str, client: str | None) -> list[str]:
        """Silence `alarm` (every active one if None) for AUDIO_PAUSE_S; the ids silenced."""
        if alarm is not None and alarm not in self._active:
            raise UnknownAlarmError(f"no active alarm {alarm!r}; active: {sorted(self._active)}")
        until = self._wall_time() + AUDIO_PAUSE_S
        ids = [alarm] if alarm is not None else sorted(self._active)
        for name in ids:
            self._active[name] = replace(self._active[name], silenced_until=until)
            self._record(
                AlarmAcknowledged(
                    alarm=name, role=role, client=client, audio_paused_s=AUDIO_PAUSE_S
                )
            )
        self._on_change()
        return ids

    def as_list(self) -> list[JsonObject]:
        now = self._wall_time()
        order = {Priority.HIGH: 0, Priority.MEDIUM: 1, Priority.LOW: 2}
        alarms = sorted(self._active.values(), key=lambda a: (order[a.priority], a.raised_seq))
        return [alarm.as_dict(now) for alarm in alarms]

    def _raise(self, change: Raise) -> None:
        if change.alarm in self._active:
            return  # the condition is already signalled: the first cause stands, as it latched
        raised = self._record(
            AlarmRaised(alarm=change.alarm, priority=change.priority.value, message=change.message)
        )
        self._active[change.alarm] = ActiveAlarm(
            change.alarm, change.priority, change.message, raised.wall_time, raised.seq
        )
        self._on_change()

    def _clear(self, alarm: str, cause: EventBase) -> None:
        active = self._active.pop(alarm, None)
        if active is None:
            return
        self._record(
            AlarmCleared(
                alarm=alarm,
                active_s=round(max(0.0, cause.wall_time - active.raised_wall_time), 3),
            )
        )
        self._on_change()
