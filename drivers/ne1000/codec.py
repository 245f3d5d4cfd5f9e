"""Bytes of the New Era NE-1000 RS-232 protocol, with no I/O (after h11).

The host side (`Ne1000Codec`) turns commands into bytes and bytes into typed replies; the pump
side (`Ne1000DeviceCodec`, used by the simulator) does the reverse. Both share the framing
helpers, so the emulator cannot drift from the driver on the wire format.

Wire format (see the design notes, protocols.md, NE-1000 section):

- Basic mode, host to pump: ``[address]<mnemonic><args> CR``. The pump strips spaces and
  upper-cases, so ``RAT 1.5 MM`` and ``RAT1.5MM`` are the same command to it; we send the
  compact form because it is what the pump parses anyway, it is shorter on the wire, and it
  matches the manual's safe-mode example (``SAF0``).
- Pump to host: ``STX <2-digit address><prompt>[data] ETX``.
- Safe mode, both ways: ``STX <len> <body> <CRC hi> <CRC lo> ETX`` with ``len = len(body) + 4``
  and CRC-16/XMODEM over the body only. The manual's packet ``02 08 'SAF0' 55 43 03`` is nine
  bytes: ``len`` counts itself, the body, the CRC and the ETX (but not the STX).
  UNVERIFIED: protocols.md describes ``len`` as "the bytes after itself", which disagrees with the
  example by one; we follow the example's arithmetic.

Choices where the sources are silent or uncertain:

- Numbers are sent with at most 4 digits plus a decimal point and at most 3 digits after it;
  below 1 the leading ``0`` counts as a digit (``0.123``). Trailing zeros are dropped.
  UNVERIFIED: whether the pump also accepts ``.1234``; we never send it.
- `SetRate` picks, among ``MM UM MH UH``, the unit whose 4-digit representation is closest to the
  requested rate; a rate whose best representation is more than 1 % off (or that overflows
  every unit) raises `ValueError`.
- `SetVolume` is two commands on the wire, ``VOL<UL|ML>`` then ``VOL<value>``, so the value is
  never read in units the pump chose by itself (it picks them from the syringe diameter). It
  produces two replies: `Ne1000Codec.encode_frames` returns one frame per expected reply.
- A body in safe mode is printable ASCII (it is a basic-mode command or reply); the decoders use
  that to reject a false start early instead of waiting for ``len`` bytes that will never come.

Errors: `replies()` raises `Ne1000ProtocolError` exactly once for a delimited frame (``STX..ETX``,
and in safe mode with ``len`` matching) whose content is wrong: `Ne1000CrcError` for a bad CRC,
the base class for a body that is not a reply. That frame is consumed; the next call to
`replies()` carries on with the following bytes. Bytes outside any delimited frame (noise, a frame
cut short) are skipped silently up to the next STX and counted in `discarded_bytes`, which also
counts the bytes of every rejected frame. No other exception leaves `feed`, `replies` or
`commands`.
"""

from __future__ import annotations

import binascii
import enum
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TypeVar

STX = 0x02
ETX = 0x03
CR = 0x0D

SAFE_LEN_OVERHEAD = 4
"""``len`` = body + 4 (the ``len`` byte itself, two CRC bytes, ETX)."""
MAX_BODY = 48
"""Longest body we accept; the longest real one (the version string) is about 15 bytes."""
MAX_LINE = 64
"""Longest basic-mode command line the device side buffers before giving up on it."""

MAX_DIGITS = 4
MAX_DECIMALS = 3
MAX_RELATIVE_ERROR = 0.01

ERROR_CODES = frozenset({"?", "NA", "OOR", "COM", "IGN"})


class Ne1000ProtocolError(ValueError):
    """Bytes that are not a valid NE-1000 frame. `data` holds the offending bytes."""

    def __init__(self, reason: str, data: bytes) -> None:
        super().__init__(f"{reason}: {data!r}")
        self.reason = reason
        self.data = data


class Ne1000CrcError(Ne1000ProtocolError):
    """A complete safe-mode frame whose CRC does not match its body."""


class PumpStatus(enum.Enum):
    INFUSING = "I"
    WITHDRAWING = "W"
    STOPPED = "S"
    PAUSED = "P"
    PAUSE_PHASE = "T"
    USER_WAIT = "U"
    PURGING = "X"


class AlarmKind(enum.Enum):
    RESET = "R"
    """Power was lost (or the pump was reset) since the last exchange."""
    STALLED = "S"
    SAFE_MODE_TIMEOUT = "T"
    PROGRAM_ERROR = "E"
    PHASE_OUT_OF_RANGE = "O"


class Direction(enum.Enum):
    INFUSE = "INF"
    WITHDRAW = "WDR"
    REVERSE = "REV"


class RateUnits(enum.Enum):
    ML_MIN = "MM"
    UL_MIN = "UM"
    ML_H = "MH"
    UL_H = "UH"


RATE_UNIT_PER_ML_MIN: dict[RateUnits, float] = {
    RateUnits.ML_MIN: 1.0,
    RateUnits.UL_MIN: 1000.0,
    RateUnits.ML_H: 60.0,
    RateUnits.UL_H: 60_000.0,
}
"""How many of each unit make one mL/min. Dict order is the tie-break preference."""


class VolumeUnits(enum.Enum):
    UL = "UL"
    ML = "ML"


VOLUME_UNIT_PER_ML: dict[VolumeUnits, float] = {VolumeUnits.UL: 1000.0, VolumeUnits.ML: 1.0}


# --- commands ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """The empty command: the pump answers with its prompt."""


@dataclass(frozen=True)
class GetVersion:
    pass


@dataclass(frozen=True)
class SetDiameter:
    mm: float


@dataclass(frozen=True)
class SetRate:
    ml_min: float


@dataclass(frozen=True)
class SetDirection:
    direction: Direction


@dataclass(frozen=True)
class SetVolume:
    """Target volume of the next run; 0 means no target."""

    ul: float


@dataclass(frozen=True)
class Run:
    pass


@dataclass(frozen=True)
class Stop:
    pass


@dataclass(frozen=True)
class GetDispensed:
    pass


@dataclass(frozen=True)
class ClearDispensed:
    direction: Direction

    def __post_init__(self) -> None:
        if self.direction is Direction.REVERSE:
            raise ValueError("ClearDispensed.direction = REVERSE: expected INFUSE or WITHDRAW")


@dataclass(frozen=True)
class SetSafeMode:
    """``SAF n``: n > 0 enters safe mode with an n-second timeout; 0 returns to basic mode."""

    timeout_s: int

    def __post_init__(self) -> None:
        if not 0 <= self.timeout_s <= 255:
            raise ValueError(f"SetSafeMode.timeout_s = {self.timeout_s}: expected 0..255")


Command = (
    Query
    | GetVersion
    | SetDiameter
    | SetRate
    | SetDirection
    | SetVolume
    | Run
    | Stop
    | GetDispensed
    | ClearDispensed
    | SetSafeMode
)


# --- replies -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    address: int
    status: PumpStatus


@dataclass(frozen=True)
class AlarmReply:
    address: int
    alarm: AlarmKind


@dataclass(frozen=True)
class ErrorReply:
    address: int
    status: PumpStatus
    code: str
    """One of `ERROR_CODES`: ``?`` unknown command, ``NA``, ``OOR``, ``COM``, ``IGN``."""

    def __post_init__(self) -> None:
        if self.code not in ERROR_CODES:
            raise ValueError(f"ErrorReply.code = {self.code!r}: expected one of {ERROR_CODES}")


@dataclass(frozen=True)
class DispensedReply:
    address: int
    status: PumpStatus
    infused_ml: float
    withdrawn_ml: float
    units: VolumeUnits = field(default=VolumeUnits.ML, compare=False)
    """The units the pump printed the volumes in (values here are always mL)."""


@dataclass(frozen=True)
class VersionReply:
    address: int
    status: PumpStatus
    text: str


@dataclass(frozen=True)
class DataReply:
    address: int
    status: PumpStatus
    data: str


Reply = Prompt | AlarmReply | ErrorReply | DispensedReply | VersionReply | DataReply


@dataclass(frozen=True)
class ParsedCommand:
    """A host command as the pump sees it (spaces and control characters stripped, upper case).

    `error` is set instead of a command for a safe-mode packet the pump must answer ``COM``
    (``"crc"``). `raw` is the frame as received.
    """

    address: int | None
    mnemonic: str
    args: str
    raw: bytes = b""
    error: str | None = None


# --- numbers -------------------------------------------------------------------------------


_DIGITS = frozenset("0123456789")
"""ASCII digits only: `str.isdigit` also accepts superscripts, which `int` then refuses."""


def format_number(value: float) -> str:
    """`value` as the pump writes numbers: at most 4 digits and 3 decimals, e.g. ``14.57``.

    Raises ValueError for a negative or non-finite value, or one of 10 000 or more.
    """
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"number {value}: expected a finite value >= 0")
    for decimals in range(MAX_DECIMALS, -1, -1):
        text = f"{value:.{decimals}f}"
        if len(text.split(".")[0]) + decimals <= MAX_DIGITS:
            if "." in text:
                text = text.rstrip("0").rstrip(".")
            return text
    raise ValueError(f"number {value}: more than {MAX_DIGITS} digits")


_NUMBER_RE = re.compile(r"[0-9]{1,4}(?:\.[0-9]{0,3})?|\.[0-9]{1,3}")


def parse_number(text: str) -> float:
    """A number the pump (or host) wrote; ValueError if it is not one of at most 4 digits."""
    if not _NUMBER_RE.fullmatch(text) or sum(c in _DIGITS for c in text) > MAX_DIGITS:
        raise ValueError(f"number {text!r}: expected at most {MAX_DIGITS} digits")
    return float(text)


_Unit = TypeVar("_Unit", RateUnits, VolumeUnits)


def _closest(value: float, factors: dict[_Unit, float], what: str) -> tuple[str, _Unit]:
    best: tuple[float, str, _Unit] | None = None
    for unit, factor in factors.items():
        scaled = value * factor
        try:
            text = format_number(scaled)
        except ValueError:
            continue
        error = abs(float(text) - scaled) / scaled
        if best is None or error < best[0]:
            best = (error, text, unit)
    if best is None or best[0] > MAX_RELATIVE_ERROR:
        raise ValueError(f"{what} = {value}: not representable in {MAX_DIGITS} digits")
    return best[1], best[2]


def rate_text(ml_min: float) -> tuple[str, RateUnits]:
    """The number and units that carry `ml_min` most faithfully."""
    if not math.isfinite(ml_min) or ml_min <= 0:
        raise ValueError(f"SetRate.ml_min = {ml_min}: expected a finite rate > 0")
    return _closest(ml_min, RATE_UNIT_PER_ML_MIN, "SetRate.ml_min")


def volume_text(ul: float) -> tuple[str, VolumeUnits]:
    if not math.isfinite(ul) or ul < 0:
        raise ValueError(f"SetVolume.ul = {ul}: expected a finite volume >= 0")
    if ul == 0:
        return "0", VolumeUnits.UL
    factors = {unit: factor / 1000.0 for unit, factor in VOLUME_UNIT_PER_ML.items()}
    return _closest(ul, factors, "SetVolume.ul")


# --- command bodies ------------------------------------------------------------------------


def command_bodies(command: Command) -> list[str]:
    """The command text, one entry per frame on the wire (without address or framing)."""
    match command:
        case Query():
            return [""]
        case GetVersion():
            return ["VER"]
        case SetDiameter(mm=mm):
            if mm <= 0:
                raise ValueError(f"SetDiameter.mm = {mm}: expected > 0")
            return ["DIA" + format_number(mm)]
        case SetRate(ml_min=ml_min):
            number, units = rate_text(ml_min)
            return [f"RAT{number}{units.value}"]
        case SetDirection(direction=direction):
            return ["DIR" + direction.value]
        case SetVolume(ul=ul):
            number, vol_units = volume_text(ul)
            return ["VOL" + vol_units.value, "VOL" + number]
        case Run():
            return ["RUN"]
        case Stop():
            return ["STP"]
        case GetDispensed():
            return ["DIS"]
        case ClearDispensed(direction=direction):
            return ["CLD" + direction.value]
        case SetSafeMode(timeout_s=timeout_s):
            return [f"SAF{timeout_s}"]


def _strip(body: bytes) -> bytes:
    return bytes(b for b in body if 0x20 < b < 0x7F or b >= 0x80).upper()


def parse_command_body(body: bytes) -> ParsedCommand:
    """Split a command as the pump does: optional address digits, a mnemonic, its arguments."""
    text = _strip(body).decode("latin-1")
    i = 0
    while i < len(text) and i < 2 and text[i] in _DIGITS:
        i += 1
    address = int(text[:i]) if i else None
    j = i
    while j < len(text) and j - i < 3 and "A" <= text[j] <= "Z":
        j += 1
    return ParsedCommand(address=address, mnemonic=text[i:j], args=text[j:], raw=body)


# --- reply bodies --------------------------------------------------------------------------

_DISPENSED_RE = re.compile(r"I([0-9.]+)W([0-9.]+)(UL|ML)")
_VERSION_RE = re.compile(r"[A-Z]+-?[0-9]+V[0-9]+(?:\.[0-9]+)*")
_STATUS_BY_CHAR = {s.value: s for s in PumpStatus}
_ALARM_BY_CHAR = {a.value: a for a in AlarmKind}


def _volume_reply_text(ml: float, units: VolumeUnits) -> str:
    value = ml * VOLUME_UNIT_PER_ML[units]
    try:
        return format_number(value)
    except ValueError:
        # Totals can outgrow 4 digits; the pump's exact behaviour then is unknown.
        return f"{value:.0f}"


def reply_body(reply: Reply) -> bytes:
    head = f"{reply.address:02d}"
    match reply:
        case Prompt(status=status):
            text = head + status.value
        case AlarmReply(alarm=alarm):
            text = head + "A?" + alarm.value
        case ErrorReply(status=status, code=code):
            text = head + status.value + ("?" if code == "?" else "?" + code)
        case DispensedReply(status=status, infused_ml=inf, withdrawn_ml=wdr, units=units):
            text = (
                f"{head}{status.value}I{_volume_reply_text(inf, units)}"
                f"W{_volume_reply_text(wdr, units)}{units.value}"
            )
        case VersionReply(status=status, text=version):
            text = head + status.value + version
        case DataReply(status=status, data=data):
            text = head + status.value + data
    return text.encode("ascii")


def parse_reply_body(body: bytes) -> Reply:
    """A reply body (between the framing) as a typed reply; Ne1000ProtocolError if it is not one."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise Ne1000ProtocolError("reply is not ASCII", body) from None
    if len(text) < 3 or not all(c in _DIGITS for c in text[:2]):
        raise Ne1000ProtocolError("reply without a 2-digit address and a prompt", body)
    address, prompt, data = int(text[:2]), text[2], text[3:]
    if prompt == "A":
        alarm = _ALARM_BY_CHAR.get(data[1:]) if data.startswith("?") else None
        if alarm is None:
            raise Ne1000ProtocolError("alarm reply without a known alarm letter", body)
        return AlarmReply(address, alarm)
    status = _STATUS_BY_CHAR.get(prompt)
    if status is None:
        raise Ne1000ProtocolError(f"unknown prompt {prompt!r}", body)
    if data.startswith("?"):
        code = data[1:] or "?"
        if code not in ERROR_CODES:
            raise Ne1000ProtocolError(f"unknown error code {code!r}", body)
        return ErrorReply(address, status, code)
    if not data:
        return Prompt(address, status)
    dispensed = _DISPENSED_RE.fullmatch(data)
    if dispensed:
        units = VolumeUnits(dispensed.group(3))
        try:
            infused, withdrawn = float(dispensed.group(1)), float(dispensed.group(2))
        except ValueError:
            raise Ne1000ProtocolError("dispensed volumes are not numbers", body) from None
        scale = VOLUME_UNIT_PER_ML[units]
        return DispensedReply(address, status, infused / scale, withdrawn / scale, units)
    if _VERSION_RE.fullmatch(data):
        return VersionReply(address, status, data)
    return DataReply(address, status, data)


# --- framing -------------------------------------------------------------------------------


def crc16(data: bytes) -> int:
    """CRC-16/XMODEM, which is what the manual calls CCITT (``crc16(b'SAF0') == 0x5543``)."""
    return binascii.crc_hqx(data, 0)


def safe_frame(body: bytes) -> bytes:
    if len(body) > MAX_BODY:
        raise ValueError(f"safe-mode body of {len(body)} bytes: at most {MAX_BODY}")
    crc = crc16(body)
    return bytes([STX, len(body) + SAFE_LEN_OVERHEAD]) + body + bytes([crc >> 8, crc & 0xFF, ETX])


def _printable(byte: int) -> bool:
    return 0x20 <= byte < 0x7F


class _FrameReader:
    """The receive buffer both sides share: resynchronisation, byte accounting, safe frames."""

    def __init__(self, safe_mode: bool) -> None:
        self.safe_mode = safe_mode
        self.discarded_bytes = 0
        self.crc_errors = 0
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        self._buf += data

    def clear(self) -> None:
        """Drop any partial frame (counted as discarded)."""
        self._discard(len(self._buf))

    @property
    def buffered(self) -> bytes:
        return bytes(self._buf)

    def _discard(self, n: int) -> None:
        del self._buf[:n]
        self.discarded_bytes += n

    def _take(self, n: int) -> bytes:
        taken = bytes(self._buf[:n])
        del self._buf[:n]
        return taken

    def _next_safe_frame(self) -> tuple[bytes, bytes] | None:
        """(frame, body) of the next safe-mode frame, None if incomplete; may raise a CRC error."""
        buf = self._buf
        while True:
            start = buf.find(STX)
            if start < 0:
                self._discard(len(buf))
                return None
            self._discard(start)
            if len(buf) < 2:
                return None
            length = buf[1]
            body_len = length - SAFE_LEN_OVERHEAD
            if not 0 <= body_len <= MAX_BODY:
                self._discard(1)
                continue
            body_end = min(len(buf), 2 + body_len)
            if not all(_printable(b) for b in buf[2:body_end]):
                self._discard(1)
                continue
            frame_len = 1 + length
            if len(buf) < frame_len:
                return None
            if buf[frame_len - 1] != ETX:
                self._discard(1)
                continue
            frame = self._take(frame_len)
            body = frame[2 : 2 + body_len]
            if (frame[-3] << 8 | frame[-2]) != crc16(body):
                self.discarded_bytes += frame_len
                self.crc_errors += 1
                raise Ne1000CrcError("safe-mode frame with a bad CRC", frame)
            return frame, body


class Ne1000Codec(_FrameReader):
    """Host side: encode commands, decode replies.

    `address` None sends commands without an address (the manual's examples do); replies always
    carry one. `safe_mode` selects the framing of replies and, by default, of commands: the driver
    flips it when the pump has confirmed a ``SAF`` command.
    """

    def __init__(self, address: int | None = 0, safe_mode: bool = False) -> None:
        if address is not None and not 0 <= address <= 99:
            raise ValueError(f"Ne1000Codec.address = {address}: expected 0..99 or None")
        super().__init__(safe_mode)
        self.address = address

    def encode_frames(self, command: Command, *, safe_mode: bool | None = None) -> list[bytes]:
        """One frame per reply the pump will send; `safe_mode` overrides the codec's mode."""
        safe = self.safe_mode if safe_mode is None else safe_mode
        prefix = "" if self.address is None else str(self.address)
        frames = []
        for text in command_bodies(command):
            body = (prefix + text).encode("ascii")
            frames.append(safe_frame(body) if safe else body + bytes([CR]))
        return frames

    def encode(self, command: Command, *, safe_mode: bool | None = None) -> bytes:
        return b"".join(self.encode_frames(command, safe_mode=safe_mode))

    def replies(self) -> Iterator[Reply]:
        while True:
            taken = self._next_safe_frame() if self.safe_mode else self._next_basic_frame()
            if taken is None:
                return
            frame, body = taken
            try:
                reply = parse_reply_body(body)
            except Ne1000ProtocolError as exc:
                self.discarded_bytes += len(frame)
                raise Ne1000ProtocolError(exc.reason, frame) from None
            yield reply

    def _next_basic_frame(self) -> tuple[bytes, bytes] | None:
        buf = self._buf
        while True:
            start = buf.find(STX)
            if start < 0:
                self._discard(len(buf))
                return None
            self._discard(start)
            end = buf.find(ETX, 1)
            scan_to = end if end >= 0 else len(buf)
            bad = next((i for i in range(1, scan_to) if not _printable(buf[i])), None)
            if bad is not None:
                # Another STX or noise before the ETX: this frame was cut short.
                self._discard(bad)
                continue
            if end > MAX_BODY + 1 or (end < 0 and len(buf) > MAX_BODY + 1):
                self._discard(scan_to)
                continue
            if end < 0:
                return None
            frame = self._take(end + 1)
            return frame, frame[1:-1]


class Ne1000DeviceCodec(_FrameReader):
    """Pump side: decode host commands, encode replies (for the emulator)."""

    def __init__(self, address: int = 0, safe_mode: bool = False) -> None:
        super().__init__(safe_mode)
        self.address = address

    def commands(self) -> Iterator[ParsedCommand]:
        """Parsed commands. The mode is re-read for every frame, so a handler may switch it."""
        while True:
            if self.safe_mode:
                try:
                    taken = self._next_safe_frame()
                except Ne1000CrcError as exc:
                    yield ParsedCommand(None, "", "", raw=exc.data, error="crc")
                    continue
                body = None if taken is None else taken[1]
            else:
                body = self._next_line()
            if body is None:
                return
            yield parse_command_body(body)

    def encode_reply(self, reply: Reply, *, safe_mode: bool | None = None) -> bytes:
        safe = self.safe_mode if safe_mode is None else safe_mode
        body = reply_body(reply)
        return safe_frame(body) if safe else bytes([STX]) + body + bytes([ETX])

    def _next_line(self) -> bytes | None:
        end = self._buf.find(CR)
        if end < 0:
            if len(self._buf) > MAX_LINE:
                self._discard(len(self._buf))
            return None
        return self._take(end + 1)[:-1]
