"""The rig I/O board: pressure stream, light, pump relay, e-stop, watchdog and cut-off.

Protocol: docs/protocols/ioboard.md. The bytes, with no I/O: `framing`, `messages` and
`device_codec` are the board's side, which its firmware shares; `codec` is the host's end. `driver`
is the async driver.
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
