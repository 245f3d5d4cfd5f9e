"""The I/O board's messages in both directions: ids, argument layouts, encoding, value ranges.

docs/protocols/ioboard.md section 4, typed for the host: frozen dataclasses and enums built on
the numbers and layouts of `firmware.protocol`, the one definition the board's firmware runs. The
host encodes its commands and decodes the board's messages with these (`drivers.ioboard.codec`).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import Any, ClassVar

from firmware import protocol as p
from firmware.framing import PAYLOAD_MAX_BYTES

PROTOCOL_VERSION = p.PROTOCOL_VERSION
SERIAL_NUMBER_BYTES = p.SERIAL_NUMBER_BYTES
PRESSURE_RAIL_HIGH_CMMHG = p.PRESSURE_RAIL_HIGH_CMMHG
PRESSURE_RAIL_LOW_CMMHG = p.PRESSURE_RAIL_LOW_CMMHG
WATCHDOG_MIN_MS = p.WATCHDOG_MIN_MS
WATCHDOG_MAX_MS = p.WATCHDOG_MAX_MS
LIGHT_MAX_PERMILLE = p.LIGHT_MAX_PERMILLE
FLOW_MAX_UL_MIN = p.FLOW_MAX_UL_MIN
LAG_MIN_MS = p.LAG_MIN_MS
LAG_MAX_MS = p.LAG_MAX_MS
PERSISTENCE_MAX_SAMPLES = p.PERSISTENCE_MAX_SAMPLES


class MsgId(enum.IntEnum):
    HEARTBEAT = p.HEARTBEAT
    CONFIG_WATCHDOG = p.CONFIG_WATCHDOG
    SET_PUMP_RELAY = p.SET_PUMP_RELAY
    SET_LIGHT = p.SET_LIGHT
    SET_CUTOFF = p.SET_CUTOFF
    RESET_TRIP = p.RESET_TRIP
    GET_STATUS = p.GET_STATUS
    IDENTIFY = p.IDENTIFY
    ZERO_PRESSURE = p.ZERO_PRESSURE
    SET_FLOW = p.SET_FLOW
    PRESSURE_SAMPLE = p.PRESSURE_SAMPLE
    STATUS = p.STATUS
    EVENT = p.EVENT
    IDENT = p.IDENT
    NACK = p.NACK
    RESISTANCE_TRIP = p.RESISTANCE_TRIP


class Trip(enum.IntFlag):
    """Latched board trips (STATUS trip bitmask)."""

    WATCHDOG = p.TRIP_WATCHDOG
    CUTOFF = p.TRIP_CUTOFF
    ESTOP = p.TRIP_ESTOP
    RESISTANCE = p.TRIP_RESISTANCE


class EventKind(enum.IntEnum):
    ESTOP_PRESSED = p.EVENT_ESTOP_PRESSED
    ESTOP_RELEASED = p.EVENT_ESTOP_RELEASED
    WATCHDOG_TRIP = p.EVENT_WATCHDOG_TRIP
    CUTOFF_TRIP = p.EVENT_CUTOFF_TRIP


class NackReason(enum.IntEnum):
    UNKNOWN_MESSAGE = p.NACK_UNKNOWN_MESSAGE
    MALFORMED = p.NACK_MALFORMED
    OUT_OF_RANGE = p.NACK_OUT_OF_RANGE
    TRIP_LATCHED = p.NACK_TRIP_LATCHED
    ESTOP_PRESSED = p.NACK_ESTOP_PRESSED
    WATCHDOG_NOT_ARMED = p.NACK_WATCHDOG_NOT_ARMED
    RELAY_CLOSED = p.NACK_RELAY_CLOSED
    SENSOR_FAULT = p.NACK_SENSOR_FAULT


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
    ARGS: ClassVar[str] = p.HOST_ARGS[p.CONFIG_WATCHDOG]

    def args(self) -> tuple[Any, ...]:
        return (_check_int(self.timeout_ms, "timeout_ms", 0, 0xFFFF),)


@dataclass(frozen=True)
class SetPumpRelay(_Message):
    closed: bool
    MSG_ID: ClassVar[MsgId] = MsgId.SET_PUMP_RELAY
    ARGS: ClassVar[str] = p.HOST_ARGS[p.SET_PUMP_RELAY]

    def args(self) -> tuple[Any, ...]:
        return (1 if self.closed else 0,)


@dataclass(frozen=True)
class SetLight(_Message):
    level_permille: int
    MSG_ID: ClassVar[MsgId] = MsgId.SET_LIGHT
    ARGS: ClassVar[str] = p.HOST_ARGS[p.SET_LIGHT]

    def args(self) -> tuple[Any, ...]:
        return (_check_int(self.level_permille, "level_permille", 0, 0xFFFF),)


@dataclass(frozen=True)
class SetCutoff(_Message):
    cutoff_mmhg: float
    MSG_ID: ClassVar[MsgId] = MsgId.SET_CUTOFF
    ARGS: ClassVar[str] = p.HOST_ARGS[p.SET_CUTOFF]

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


@dataclass(frozen=True)
class SetFlow(_Message):
    """The flow the pump was told and the board's resistance-stop limits (protocol 5.9)."""

    flow_ml_min: float
    """0: the pump stopped; the board's resistance stop is disarmed."""
    limit_mmhg_min_per_ml: float
    lag_short_ms: int
    lag_long_ms: int
    persistence_samples: int
    MSG_ID: ClassVar[MsgId] = MsgId.SET_FLOW
    ARGS: ClassVar[str] = p.HOST_ARGS[p.SET_FLOW]

    def args(self) -> tuple[Any, ...]:
        return (
            _check_int(round(self.flow_ml_min * 1000), "flow_ul_min", 0, 0xFFFF),
            _check_int(
                round(self.limit_mmhg_min_per_ml * 100), "limit (0.01 mmHg·min/mL)", 0, 0xFFFF
            ),
            _check_int(self.lag_short_ms, "lag_short_ms", 0, 0xFFFF),
            _check_int(self.lag_long_ms, "lag_long_ms", 0, 0xFFFF),
            _check_int(self.persistence_samples, "persistence_samples", 0, 0xFF),
        )


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
    | SetFlow
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
    ARGS: ClassVar[str] = p.SAMPLE_ARGS

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
    ARGS: ClassVar[str] = p.STATUS_ARGS

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
    ARGS: ClassVar[str] = p.EVENT_ARGS

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
    ARGS: ClassVar[str] = p.IDENT_ARGS

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
    ARGS: ClassVar[str] = p.NACK_ARGS

    def args(self) -> tuple[Any, ...]:
        return (_check_int(self.msg_id, "msg_id", 0, 0xFF), int(self.reason))


@dataclass(frozen=True)
class ResistanceTrip(_Message):
    """The board's resistance stop latched (protocol 5.9): sent when it trips, and after STATUS
    in every answer to GET_STATUS while it stays latched."""

    trigger_t_us: int
    """Board time of the first sample of the run over the limit."""
    relay_open_t_us: int
    """Board time when the board opened the relay."""
    resistance_mmhg_min_per_ml: float
    """P / Q at the sample that tripped (655.35: at or above the u16's top)."""
    flow_ml_min: float
    """The flow it divided by: the largest of the commanded flow and its two lags."""
    pressure_mmhg: float
    trigger_board_time_s: float = field(default=0.0, compare=False)
    relay_open_board_time_s: float = field(default=0.0, compare=False)
    rx_time_s: float = field(default=0.0, compare=False)
    MSG_ID: ClassVar[MsgId] = MsgId.RESISTANCE_TRIP
    ARGS: ClassVar[str] = p.RESISTANCE_TRIP_ARGS

    @property
    def latency_ms(self) -> float:
        """From the trigger sample to the relay opening, on the board's clock (wrap-safe)."""
        half = 1 << 29
        delta = ((self.relay_open_t_us - self.trigger_t_us + half) % (1 << 30)) - half
        return delta / 1000.0

    def args(self) -> tuple[Any, ...]:
        return (
            _check_int(self.trigger_t_us, "trigger_t_us", 0, 0xFFFFFFFF),
            _check_int(self.relay_open_t_us, "relay_open_t_us", 0, 0xFFFFFFFF),
            _check_int(
                round(self.resistance_mmhg_min_per_ml * 100), "resistance (0.01)", 0, 0xFFFF
            ),
            _check_int(round(self.flow_ml_min * 1000), "flow_ul_min", 0, 0xFFFF),
            _cmmhg(self.pressure_mmhg, "pressure_mmhg", -0x8000, 0x7FFF),
        )


BoardMessage = PressureSample | BoardStatus | BoardEvent | BoardIdent | Nack | ResistanceTrip


def encode_payload(messages: tuple[_Message, ...]) -> bytes:
    payload = b"".join(m.encode() for m in messages)
    if len(payload) > PAYLOAD_MAX_BYTES:
        raise ValueError(
            f"{len(messages)} messages take {len(payload)} bytes: a frame holds {PAYLOAD_MAX_BYTES}"
        )
    return payload
