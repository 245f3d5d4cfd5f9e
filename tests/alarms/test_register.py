"""The alarm register: raised and cleared by the journal's events, at the documented priority;
an acknowledgement silences the audio for a bounded time and never clears the alarm."""

from __future__ import annotations

import pytest

from rig.alarms.conditions import MEDIUM_STOPS, Priority
from rig.alarms.register import AUDIO_PAUSE_S, AlarmRegister, UnknownAlarmError
from rig.events.models import (
    AlarmAcknowledged,
    AlarmCleared,
    AlarmRaised,
    DeviceLinkChanged,
    EventBase,
    FaultReset,
    Stopped,
    StorageFault,
    StorageRestored,
)
from rig.fluid.events import StopCause, StopEvent


class Journal:
    """Stamps events as the daemon's journal would, and feeds them back to the register."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.events: list[EventBase] = []
        self.changes = 0
        self.register = AlarmRegister(self.record, lambda: self.now, self.changed)

    def changed(self) -> None:
        self.changes += 1

    def record(self, event: EventBase) -> EventBase:
        stamped = event.model_copy(update={"seq": len(self.events) + 1, "wall_time": self.now})
        self.events.append(stamped)
        self.register.on_event(stamped)
        return stamped

    def of(self, kind: type[EventBase]) -> list[EventBase]:
        return [e for e in self.events if isinstance(e, kind)]


def _stop(cause: StopCause, latched: bool = True) -> Stopped:
    event = Stopped.of(StopEvent(cause, "why", mode="irrigate"))
    return event.model_copy(update={"latched": latched})


@pytest.mark.parametrize("cause", [c for c in StopCause if c.latches])
def test_every_latched_stop_raises_the_fault_alarm_high_unless_documented_medium(
    cause: StopCause,
) -> None:
    journal = Journal()
    journal.record(_stop(cause))
    (alarm,) = journal.register.as_list()
    expected = Priority.MEDIUM if cause in MEDIUM_STOPS else Priority.HIGH
    assert (alarm["id"], alarm["priority"]) == ("fault", expected.value)
    assert cause.in_plain_words in str(alarm["message"])


def test_an_ordinary_stop_raises_nothing() -> None:
    journal = Journal()
    journal.record(_stop(StopCause.OPERATOR, latched=False))
    assert journal.register.as_list() == [] and journal.changes == 0


def test_acknowledging_silences_for_a_bounded_time_and_keeps_the_alarm_until_reset() -> None:
    journal = Journal()
    journal.record(_stop(StopCause.RESISTANCE_LIMIT))
    journal.now += 5.0
    assert journal.register.acknowledge(None, "surgeon", "console") == ["fault"]
    (alarm,) = journal.register.as_list()
    assert alarm["acknowledged"] and alarm["audio_paused_until"] == journal.now + AUDIO_PAUSE_S
    journal.now += AUDIO_PAUSE_S + 1
    (alarm,) = journal.register.as_list()
    assert alarm["acknowledged"] and alarm["audio_paused_until"] is None  # sounding again
    journal.now += 1.0
    journal.record(FaultReset(cleared=StopCause.RESISTANCE_LIMIT))
    assert journal.register.as_list() == []
    (cleared,) = journal.of(AlarmCleared)
    assert isinstance(cleared, AlarmCleared) and cleared.active_s == 5.0 + AUDIO_PAUSE_S + 2
    assert [type(e) for e in journal.events if "alarm" in e.kind] == [
        AlarmRaised,
        AlarmAcknowledged,
        AlarmCleared,
    ]


def test_a_second_latched_stop_keeps_the_first_alarm() -> None:
    journal = Journal()
    journal.record(_stop(StopCause.RESISTANCE_RISE))
    journal.record(_stop(StopCause.PUMP_LINK_LOST))
    (alarm,) = journal.register.as_list()
    assert StopCause.RESISTANCE_RISE.in_plain_words in str(alarm["message"])
    assert len(journal.of(AlarmRaised)) == 1


def test_acknowledging_an_unknown_alarm_is_an_error_that_names_the_active_ones() -> None:
    journal = Journal()
    journal.record(_stop(StopCause.ESTOP))
    with pytest.raises(UnknownAlarmError, match=r"'nope'.*\['fault'\]"):
        journal.register.acknowledge("nope", "surgeon", None)
    assert journal.of(AlarmAcknowledged) == []


def test_links_and_storage_are_alarms_of_their_own_ordered_by_priority() -> None:
    journal = Journal()
    journal.record(StorageFault(reason="full", free_mb=3.0))
    journal.record(DeviceLinkChanged(device="pump", up=False))
    journal.record(_stop(StopCause.PUMP_LINK_LOST))
    assert [(a["id"], a["priority"]) for a in journal.register.as_list()] == [
        ("fault", "high"),
        ("link.pump", "medium"),
        ("storage", "low"),
    ]
    journal.record(DeviceLinkChanged(device="pump", up=True))
    journal.record(StorageRestored(free_mb=900.0))
    assert [a["id"] for a in journal.register.as_list()] == ["fault"]
