"""The rig I/O board: pressure stream, light, pump relay, e-stop, watchdog and cut-off.

Protocol: docs/protocols/ioboard.md. `codec` has the bytes (no I/O), `driver` the async driver.
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
    "Trip",
]
