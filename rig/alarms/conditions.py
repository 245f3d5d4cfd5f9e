"""Which events raise and clear which alarm condition, at which priority.

Priority follows IEC 60601-1-8's severity x onset matrix (clinical.md), written down here once:

- HIGH: the rig stopped the fluid on a hazard it detected (the duct's resistance, pressure, a
  leak, a device or the control loop failing, an e-stop) and stays latched: the surgeon must act
  now (the scope tip is against the wall, the duct may be hurt), and nothing moves until a reset.
- MEDIUM: a stop or a fault that needs a prompt response but signals no harm in progress: a
  volume cap reached (the dose is complete), a failed self-test (the rig never started moving),
  a device link lost while nothing moved, a record that cannot be written.
- LOW: the record's storage running out (no procedure can start; nothing else is affected).

Conditions are told apart by an id: `fault` (the latched stop, one at a time, as the interlock
latches one), `link.<device>`, `journal`, `storage`, `video`. A subsystem that adds a condition adds its
events here.

Video lost is MEDIUM: nothing moves because of it, but the surgeon is blind and the basket may
not close (H25). The camera's link is its video: its loss is the `video` alarm alone, not also
a `link.camera` one (one condition, one alarm).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rig.events.models import (
    CameraChanged,
    DeviceLinkChanged,
    EventBase,
    FaultReset,
    JournalFault,
    Stopped,
    StorageFault,
    StorageRestored,
)
from rig.fluid.events import StopCause

VIDEO_DEVICE = "camera"
"""The device whose link is the video (its loss raises `video`, not `link.camera`)."""


class Priority(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


MEDIUM_STOPS = frozenset(
    {
        StopCause.SALINE_VOLUME_CAP,
        StopCause.CONTRAST_VOLUME_CAP,
        StopCause.SELF_TEST_FAILED,
    }
)
"""Latched stops that are MEDIUM; every other latched stop is HIGH."""


@dataclass(frozen=True)
class Raise:
    alarm: str
    priority: Priority
    message: str


@dataclass(frozen=True)
class Clear:
    alarm: str


def conditions_of(event: EventBase) -> list[Raise | Clear]:
    """What `event` does to the alarm conditions (nothing, for most events)."""
    match event:
        case Stopped(latched=True, cause=cause):
            priority = Priority.MEDIUM if cause in MEDIUM_STOPS else Priority.HIGH
            return [Raise("fault", priority, f"{cause.in_plain_words}: {event.message}")]
        case FaultReset():
            return [Clear("fault")]
        case CameraChanged(live=False):
            return [Raise("video", Priority.MEDIUM, f"no live video: {event.detail}")]
        case CameraChanged(live=True):
            return [Clear("video")]
        case DeviceLinkChanged() if event.device == VIDEO_DEVICE:
            return []
        case DeviceLinkChanged(up=False):
            return [Raise(f"link.{event.device}", Priority.MEDIUM, f"{event.device} link lost")]
        case DeviceLinkChanged(up=True):
            return [Clear(f"link.{event.device}")]
        case JournalFault():
            return [Raise("journal", Priority.MEDIUM, f"the record is not durable: {event.reason}")]
        case StorageFault():
            return [Raise("storage", Priority.LOW, f"no new procedure: {event.reason}")]
        case StorageRestored():
            return [Clear("storage")]
    return []
