"""The I/O board's messages in both directions: ids, argument layouts, encoding, value ranges.

Part of the board's side of the protocol (docs/protocols/ioboard.md section 4), with `framing`
and `device_codec`: the board decodes the host's messages with these layouts and encodes its own
with them, and the host does the reverse (`drivers.ioboard.codec`). Imports: the standard library
and `framing` only. What this module still needs of CPython, for issue 12 (MicroPython on the
board, checked with mpy-cross) to settle:

- `dataclasses` (frozen messages), `enum` (IntEnum, IntFlag) and `typing` (ClassVar, Any), which
  MicroPython's core does not have;
- the unions `HostMessage` and `BoardMessage`, built with `|` between classes at import;
- `from __future__ import annotations` and the annotations themselves.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import Any, ClassVar

from drivers.ioboard.framing import PAYLOAD_MAX_BYTES

PROTOCOL_VERSION = 1
SERIAL_NUMBER_BYTES = 16

PRESSURE_RAIL_HIGH_CMMHG = 0x7FFF
"""Reserved sample value: the transducer input sits at its positive rail (open bridge)."""
PRESSURE_RAIL_LOW_CMMHG = -0x8000
"""Reserved sample value: the transducer input sits at its negative rail (shorted bridge)."""

WATCHDOG_MIN_MS = 20
WATCHDOG_MAX_MS = 2000
LIGHT_MAX_PERMILLE = 1000


class MsgId(enum.IntEnum):
    HEARTBEAT = 0x01
    CONFIG_WATCHDOG = 0x02
    SET_PUMP_RELAY = 0x03
    SET_LIGHT = 0x04
    SET_CUTOFF = 0x05
    RESET_TRIP = 0x06
    GET_STATUS = 0x07
    IDENTIFY = 0x08
    ZERO_PRESSURE = 0x09
    PRESSURE_SAMPLE = 0x81
    STATUS = 0x82
    EVENT = 0x83
    IDENT = 0x84
    NACK = 0x85


class Trip(enum.IntFlag):
    """Latched board trips (STATUS trip bitmask)."""

    WATCHDOG = 0x01
    CUTOFF = 0x02
    ESTOP = 0x04


class EventKind(enum.IntEnum):
    ESTOP_PRESSED = 1
    ESTOP_RELEASED = 2
    WATCHDOG_TRIP = 3
    CUTOFF_TRIP = 4


class NackReason(enum.IntEnum):
    UNKNOWN_MESSAGE = 1
    MALFORMED = 2
    OUT_OF_RANGE = 3
    TRIP_LATCHED = 4
    ESTOP_PRESSED = 5
    WATCHDOG_NOT_ARMED = 6
    RELAY_CLOSED = 7
    SENSOR_FAULT = 8


def _cmmhg(value_mmhg: float, name: str, lo: int, hi: int) -> int:
    cmmhg = round(value_mmhg * 100)
    if not lo <= cmmhg <= hi:
        raise ValueError(f"{name} = {value_mmhg} mmHg: expected {lo / 100}..{hi / 100}")
    return cmmhg


def _check_int(value: int, name: str, lo: int, hi: int) -> int:
    if not lo <= value <= hi:
        raise ValueError(f"{name} = {value}: expected {lo}..{hi}")
    return value


class _Message:
    """A message is `<msg id><fixed-size little-endian args>`; `ARGS` is the args' layout, a
    struct format (a string, not a struct.Struct, which MicroPython lacks)."""

    MSG_ID: ClassVar[MsgId]
    ARGS: ClassVar[str] = "<"

    def args(self) -> tuple[Any, ...]:
        return ()

    def encode(self) -> bytes:
        return bytes((self.MSG_ID,)) + struct.pack(self.ARGS, *self.args())


# host -> board


@dataclass(frozen=True)
class Heartbeat(_Message):
    MSG_ID: ClassVar[MsgId] = MsgId.HEARTBEAT


@dataclass(frozen=True)
class ConfigWatchdog(_Message):
    timeout_ms: int
    MSG_ID: ClassVar[MsgId] = MsgId.CONFIG_WATCHDOG
    ARGS: ClassVar[str] = "<H"

    def args(self) -> tuple[Any, ...]:
        return (_check_int(self.timeout_ms, "timeout_ms", 0, 0xFFFF),)


@dataclass(frozen=True)
class SetPumpRelay(_Message):
    closed: bool
    MSG_ID: ClassVar[MsgId] = MsgId.SET_PUMP_RELAY
    ARGS: ClassVar[str] = "<B"

    def args(self) -> tuple[Any, ...]:
        return (1 if self.closed else 0,)


@dataclass(frozen=True)
class SetLight(_Message):
    level_permille: int
    MSG_ID: ClassVar[MsgId] = MsgId.SET_LIGHT
    ARGS: ClassVar[str] = "<H"

    def args(self) -> tuple[Any, ...]:
        return (_check_int(self.level_permille, "level_permille", 0, 0xFFFF),)


@dataclass(frozen=True)
class SetCutoff(_Message):
    cutoff_mmhg: float
    MSG_ID: ClassVar[MsgId] = MsgId.SET_CUTOFF
    ARGS: ClassVar[str] = "<H"

    def args(self) -> tuple[Any, ...]:
        return (_cmmhg(self.cutoff_mmhg, "cutoff_mmhg", 0, 0xFFFF),)


@dataclass(frozen=True)
class ResetTrip(_Message):
    MSG_ID: ClassVar[MsgId] = MsgId.RESET_TRIP


@dataclass(frozen=True)
class GetStatus(_Message):
    MSG_ID: ClassVar[MsgId] = MsgId.GET_STATUS


@dataclass(frozen=True)
class Identify(_Message):
    MSG_ID: ClassVar[MsgId] = MsgId.IDENTIFY


@dataclass(frozen=True)
class ZeroPressure(_Message):
    MSG_ID: ClassVar[MsgId] = MsgId.ZERO_PRESSURE


HostMessage = (
    Heartbeat
    | ConfigWatchdog
    | SetPumpRelay
    | SetLight
    | SetCutoff
    | ResetTrip
    | GetStatus
    | Identify
    | ZeroPressure
)

# board -> host. Timestamped messages carry the raw 32-bit board time (`t_us`, as on the wire) and,
# filled by the host codec, the unwrapped board time and the host receive time; those two are not
# part of the message's identity (compare=False), so round trips compare equal.


@dataclass(frozen=True)
class PressureSample(_Message):
    t_us: int
    sample_counter: int
    pressure_mmhg: float
    """Zero-corrected gauge pressure; at a rail value the transducer is faulty (see `at_rail`)."""
    board_time_s: float = field(default=0.0, compare=False)
    rx_time_s: float = field(default=0.0, compare=False)
    MSG_ID: ClassVar[MsgId] = MsgId.PRESSURE_SAMPLE
    ARGS: ClassVar[str] = "<IHh"

    @property
    def at_rail(self) -> bool:
        return round(self.pressure_mmhg * 100) in (
            PRESSURE_RAIL_HIGH_CMMHG,
            PRESSURE_RAIL_LOW_CMMHG,
        )

    def args(self) -> tuple[Any, ...]:
        return (
            _check_int(self.t_us, "t_us", 0, 0xFFFFFFFF),
            _check_int(self.sample_counter, "sample_counter", 0, 0xFFFF),
            _cmmhg(self.pressure_mmhg, "pressure_mmhg", -0x8000, 0x7FFF),
        )


@dataclass(frozen=True)
class BoardStatus(_Message):
    t_us: int
    relay_closed: bool
    estop_pressed: bool
    trips: Trip
    watchdog_timeout_ms: int
    """0 while the watchdog has not been armed."""
    light_permille: int
    cutoff_mmhg: float
    zero_offset_mmhg: float
    board_time_s: float = field(default=0.0, compare=False)
    rx_time_s: float = field(default=0.0, compare=False)
    MSG_ID: ClassVar[MsgId] = MsgId.STATUS
    ARGS: ClassVar[str] = "<IBBBHHHh"

    def args(self) -> tuple[Any, ...]:
        return (
            _check_int(self.t_us, "t_us", 0, 0xFFFFFFFF),
            1 if self.relay_closed else 0,
            1 if self.estop_pressed else 0,
            _check_int(int(self.trips), "trips", 0, 0xFF),
            _check_int(self.watchdog_timeout_ms, "watchdog_timeout_ms", 0, 0xFFFF),
            _check_int(self.light_permille, "light_permille", 0, 0xFFFF),
            _cmmhg(self.cutoff_mmhg, "cutoff_mmhg", 0, 0xFFFF),
            _cmmhg(self.zero_offset_mmhg, "zero_offset_mmhg", -0x8000, 0x7FFF),
        )


@dataclass(frozen=True)
class BoardEvent(_Message):
    t_us: int
    kind: EventKind
    pressure_mmhg: float
    """The board's pressure reading when the event happened."""
    board_time_s: float = field(default=0.0, compare=False)
    rx_time_s: float = field(default=0.0, compare=False)
    MSG_ID: ClassVar[MsgId] = MsgId.EVENT
    ARGS: ClassVar[str] = "<IBh"

    def args(self) -> tuple[Any, ...]:
        return (
            _check_int(self.t_us, "t_us", 0, 0xFFFFFFFF),
            int(self.kind),
            _cmmhg(self.pressure_mmhg, "pressure_mmhg", -0x8000, 0x7FFF),
        )


@dataclass(frozen=True)
class BoardIdent(_Message):
    protocol_version: int
    firmware_version: tuple[int, int, int]
    serial_number: str
    MSG_ID: ClassVar[MsgId] = MsgId.IDENT
    ARGS: ClassVar[str] = "<BBBB16s"

    def args(self) -> tuple[Any, ...]:
        serial = self.serial_number.encode("ascii")
        if len(serial) > SERIAL_NUMBER_BYTES or b"\0" in serial:
            raise ValueError(
                f"serial_number = {self.serial_number!r}: expected at most 16 ASCII characters"
            )
        major, minor, patch = self.firmware_version
        return (
            _check_int(self.protocol_version, "protocol_version", 0, 0xFF),
            _check_int(major, "firmware major", 0, 0xFF),
            _check_int(minor, "firmware minor", 0, 0xFF),
            _check_int(patch, "firmware patch", 0, 0xFF),
            serial,
        )


@dataclass(frozen=True)
class Nack(_Message):
    msg_id: int
    """The id of the refused command (or of the unknown/malformed bytes)."""
    reason: NackReason
    MSG_ID: ClassVar[MsgId] = MsgId.NACK
    ARGS: ClassVar[str] = "<BB"

    def args(self) -> tuple[Any, ...]:
        return (_check_int(self.msg_id, "msg_id", 0, 0xFF), int(self.reason))


BoardMessage = PressureSample | BoardStatus | BoardEvent | BoardIdent | Nack


def encode_payload(messages: tuple[_Message, ...]) -> bytes:
    payload = b"".join(m.encode() for m in messages)
    if len(payload) > PAYLOAD_MAX_BYTES:
        raise ValueError(
            f"{len(messages)} messages take {len(payload)} bytes: a frame holds {PAYLOAD_MAX_BYTES}"
        )
    return payload
