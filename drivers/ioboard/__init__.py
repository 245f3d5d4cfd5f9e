"""The rig I/O board: pressure stream, light, pump relay, e-stop, watchdog and cut-off.

Protocol: docs/protocols/ioboard.md. The bytes, with no I/O: the firmware's `firmware.framing` and
`firmware.protocol`, shared with the board; `messages` (typed messages, both ways) and `codec`
(the host's end) on top of them; `device_codec`, the board's end in typed form for the host's
tests. `driver` is the async driver.
"""

from drivers.ioboard.codec import (
    BoardEvent,
    BoardIdent,
    BoardProtocolError,
    BoardStatus,
    EventKind,
    Nack,
    NackReason,
    PressureSample,
    ResistanceTrip,
    SetFlow,
    Trip,
)
from drivers.ioboard.driver import BoardCommandRejectedError, BoardTimeoutError, IoBoard

__all__ = [
    "BoardCommandRejectedError",
    "BoardEvent",
    "BoardIdent",
    "BoardProtocolError",
    "BoardStatus",
    "BoardTimeoutError",
    "EventKind",
    "IoBoard",
    "Nack",
    "NackReason",
    "PressureSample",
    "ResistanceTrip",
    "SetFlow",
    "Trip",
]
