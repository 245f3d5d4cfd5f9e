"""The rig I/O board's wire protocol, with no I/O (after h11): bytes in, typed messages out.

The protocol is defined in docs/protocols/ioboard.md; this module is its reference
implementation, and the board firmware implements the same rules. Two ends share the framing:

- `BoardHostCodec` (the host): numbers its frames, keeps them until the board acknowledges them,
  hands them back for go-back-N retransmission, measures the round trip, and decodes the board's
  frames into `BoardFrame` events.
- `BoardDeviceCodec` (the board and its emulator): accepts only the next expected host sequence
  number, decodes host commands (range checks included, so a firmware port has one place to copy
  them from), and stamps its next-expected sequence number on every frame it sends.

Framing errors (garbage, CRC failures) are counted and skipped, never raised: a serial line
delivers noise and the stream must resynchronise by itself. A frame that passes its CRC but
carries a payload the host cannot decode raises `BoardProtocolError`, because that is a protocol
mismatch rather than noise.
"""

from __future__ import annotations

import binascii
import enum
import struct
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

FRAME_MAX_BYTES = 64
FRAME_OVERHEAD_BYTES = 5
"""len, seq, CRC hi, CRC lo, sync."""
PAYLOAD_MAX_BYTES = FRAME_MAX_BYTES - FRAME_OVERHEAD_BYTES
SYNC_BYTE = 0x7E
SEQ_MARK = 0x10
SEQ_MODULO = 16
MAX_UNACKED_FRAMES = 15
"""With 4-bit sequence numbers an ack is unambiguous only while fewer than 16 frames are out."""

CRC_INIT = 0xFFFF

RTO_MIN_S = 0.025
RTO_MAX_S = 5.0
RTO_INITIAL_S = 0.1
"""Before the first round-trip sample: generous for a USB CDC link whose RTT is ~1 ms."""

PROTOCOL_VERSION = 1
SERIAL_NUMBER_BYTES = 16

PRESSURE_RAIL_HIGH_CMMHG = 0x7FFF
"""Reserved sample value: the transducer input sits at its positive rail (open bridge)."""
PRESSURE_RAIL_LOW_CMMHG = -0x8000
"""Reserved sample value: the transducer input sits at its negative rail (shorted bridge)."""

WATCHDOG_MIN_MS = 20
WATCHDOG_MAX_MS = 2000
LIGHT_MAX_PERMILLE = 1000


class BoardProtocolError(ValueError):
    """Bytes that passed the framing but do not decode; `data` holds the offending bytes."""

    def __init__(self, message: str, data: bytes = b"") -> None:
        super().__init__(message)
        self.data = data


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, not reflected, xorout 0 ("123456789" ->
    0x29B1). binascii.crc_hqx is exactly this register with the init passed in."""
    return binascii.crc_hqx(data, CRC_INIT)


def build_frame(seq: int, payload: bytes) -> bytes:
    if not 0 <= seq < SEQ_MODULO:
        raise ValueError(f"seq = {seq}: expected 0..15")
    if len(payload) > PAYLOAD_MAX_BYTES:
        raise ValueError(
            f"payload of {len(payload)} bytes: at most {PAYLOAD_MAX_BYTES} fit a frame"
        )
    head = bytes((len(payload) + FRAME_OVERHEAD_BYTES, SEQ_MARK | seq)) + payload
    crc = crc16(head)
    return head + bytes((crc >> 8, crc & 0xFF, SYNC_BYTE))


class Deframer:
    """Cuts a byte stream into (seq, payload) frames, resynchronising after garbage.

    At each position it tries to read a frame: a plausible len (5..64), a seq byte with the 0x10
    marker, the sync byte where len says the frame ends, and a matching CRC. Anything else drops
    one byte and tries again at the next position, so a corrupted len byte cannot swallow the good
    frame behind it.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.invalid_bytes = 0
        self.crc_errors = 0

    def feed(self, data: bytes) -> None:
        self._buf += data

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def next_frame(self) -> tuple[int, bytes] | None:
        buf = self._buf
        while buf:
            length = buf[0]
            if not FRAME_OVERHEAD_BYTES <= length <= FRAME_MAX_BYTES or (
                len(buf) > 1 and buf[1] & 0xF0 != SEQ_MARK
            ):
                self._discard(1)
                continue
            if len(buf) < length:
                return None
            if buf[length - 1] != SYNC_BYTE:
                self._discard(1)
                continue
            crc = (buf[length - 3] << 8) | buf[length - 2]
            if crc16(bytes(buf[: length - 3])) != crc:
                self.crc_errors += 1
                self._discard(1)
                continue
            seq = buf[1] & 0x0F
            payload = bytes(buf[2 : length - 3])
            del buf[:length]
            return seq, payload
        return None

    def _discard(self, n: int) -> None:
        del self._buf[:n]
        self.invalid_bytes += n


# --- messages ---------------------------------------------------------------------------------


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
    """A message is `<msg id><fixed-size little-endian args>`; `ARGS` is the args' layout."""

    MSG_ID: ClassVar[MsgId]
    ARGS: ClassVar[struct.Struct] = struct.Struct("<")

    def args(self) -> tuple[Any, ...]:
        return ()

    def encode(self) -> bytes:
        return bytes((self.MSG_ID,)) + self.ARGS.pack(*self.args())


# host -> board


@dataclass(frozen=True)
class Heartbeat(_Message):
    MSG_ID: ClassVar[MsgId] = MsgId.HEARTBEAT


@dataclass(frozen=True)
class ConfigWatchdog(_Message):
    timeout_ms: int
    MSG_ID: ClassVar[MsgId] = MsgId.CONFIG_WATCHDOG
    ARGS: ClassVar[struct.Struct] = struct.Struct("<H")

    def args(self) -> tuple[Any, ...]:
        return (_check_int(self.timeout_ms, "timeout_ms", 0, 0xFFFF),)


@dataclass(frozen=True)
class SetPumpRelay(_Message):
    closed: bool
    MSG_ID: ClassVar[MsgId] = MsgId.SET_PUMP_RELAY
    ARGS: ClassVar[struct.Struct] = struct.Struct("<B")

    def args(self) -> tuple[Any, ...]:
        return (1 if self.closed else 0,)


@dataclass(frozen=True)
class SetLight(_Message):
    level_permille: int
    MSG_ID: ClassVar[MsgId] = MsgId.SET_LIGHT
    ARGS: ClassVar[struct.Struct] = struct.Struct("<H")

    def args(self) -> tuple[Any, ...]:
        return (_check_int(self.level_permille, "level_permille", 0, 0xFFFF),)


@dataclass(frozen=True)
class SetCutoff(_Message):
    cutoff_mmhg: float
    MSG_ID: ClassVar[MsgId] = MsgId.SET_CUTOFF
    ARGS: ClassVar[struct.Struct] = struct.Struct("<H")

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
    ARGS: ClassVar[struct.Struct] = struct.Struct("<IHh")

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
    ARGS: ClassVar[struct.Struct] = struct.Struct("<IBBBHHHh")

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
    ARGS: ClassVar[struct.Struct] = struct.Struct("<IBh")

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
    ARGS: ClassVar[struct.Struct] = struct.Struct("<BBBB16s")

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
    ARGS: ClassVar[struct.Struct] = struct.Struct("<BB")

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


def _decode_board_message(msg_id: int, args: tuple[Any, ...]) -> BoardMessage:
    if msg_id == MsgId.PRESSURE_SAMPLE:
        return PressureSample(args[0], args[1], args[2] / 100)
    if msg_id == MsgId.STATUS:
        return BoardStatus(
            t_us=args[0],
            relay_closed=bool(args[1]),
            estop_pressed=bool(args[2]),
            trips=Trip(args[3]),
            watchdog_timeout_ms=args[4],
            light_permille=args[5],
            cutoff_mmhg=args[6] / 100,
            zero_offset_mmhg=args[7] / 100,
        )
    if msg_id == MsgId.EVENT:
        return BoardEvent(args[0], EventKind(args[1]), args[2] / 100)
    if msg_id == MsgId.IDENT:
        serial = args[4].rstrip(b"\0")
        return BoardIdent(args[0], (args[1], args[2], args[3]), serial.decode("ascii"))
    return Nack(args[0], NackReason(args[1]))


_BOARD_ARGS: dict[int, struct.Struct] = {
    m.MSG_ID: m.ARGS for m in (PressureSample, BoardStatus, BoardEvent, BoardIdent, Nack)
}


def decode_board_payload(payload: bytes) -> tuple[BoardMessage, ...]:
    """Decode a board frame's payload; raise BoardProtocolError on anything not in the spec."""
    out: list[BoardMessage] = []
    pos = 0
    while pos < len(payload):
        msg_id = payload[pos]
        layout = _BOARD_ARGS.get(msg_id)
        if layout is None:
            raise BoardProtocolError(f"unknown board message id 0x{msg_id:02x}", payload)
        end = pos + 1 + layout.size
        if end > len(payload):
            raise BoardProtocolError(
                f"board message 0x{msg_id:02x} truncated: {len(payload) - pos - 1} of "
                f"{layout.size} argument bytes",
                payload,
            )
        try:
            out.append(_decode_board_message(msg_id, layout.unpack(payload[pos + 1 : end])))
        except (ValueError, UnicodeDecodeError) as exc:
            raise BoardProtocolError(f"board message 0x{msg_id:02x}: {exc}", payload) from exc
        pos = end
    return tuple(out)


# --- host side --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoardFrame:
    """One frame from the board: what it acknowledges and what it says.

    `acked_seqs` are the host frames this frame newly acknowledges, oldest first. The board
    answers an accepted host frame at once, so replies to a command arrive in the frame that
    acknowledges it: they belong to `acked_seqs[-1]`.
    """

    ack_seq: int
    acked_seqs: tuple[int, ...]
    rtt_s: float | None
    messages: tuple[BoardMessage, ...]
    rx_time_s: float


@dataclass
class _Outgoing:
    seq: int
    data: bytes
    sent_s: float = 0.0
    last_sent_s: float = 0.0
    retransmitted: bool = False


class _Unwrapper:
    """Extends the board's 32-bit microsecond clock (it wraps every 71.6 minutes).

    The first timestamp is placed in the wrap period nearest the host's receive time: with the
    simulator, whose board clock is the host's CLOCK_MONOTONIC, that makes board time and host
    time directly comparable. Later ones follow by signed difference, so a STATUS stamped a little
    before the sample that preceded it on the wire does not jump a full period.
    """

    def __init__(self) -> None:
        self._last_raw: int | None = None
        self._last_full = 0

    def full_us(self, raw_us: int, rx_time_s: float) -> int:
        if self._last_raw is None:
            rx_us = int(rx_time_s * 1_000_000)
            wraps = round((rx_us - raw_us) / 2**32)
            full = raw_us + wraps * 2**32
        else:
            delta = ((raw_us - self._last_raw + 2**31) % 2**32) - 2**31
            full = self._last_full + delta
        self._last_raw, self._last_full = raw_us, full
        return full


class BoardHostCodec:
    """The host end of the link.

    Usage: send `probe()` and feed the reply; once `synced`, `encode(...)` numbered frames and
    write what it returns; `feed(data, rx_time_s)` the port's bytes and iterate `events()`; write
    `data_to_send(now_s)` after events (frames held back while the window was full) and
    `frames_to_retransmit(now_s)` whenever `retransmit_deadline_s()` has passed.
    """

    def __init__(self) -> None:
        self._deframer = Deframer()
        self._rx_time_s = 0.0
        self._unwrapper = _Unwrapper()
        self._next_seq = 0
        self._unacked: deque[_Outgoing] = deque()
        self._held: deque[_Outgoing] = deque()
        self.synced = False
        self.last_seq: int | None = None
        """Sequence number of the frame `encode` built last (sent or held)."""
        self.srtt_s: float | None = None
        self.rttvar_s: float | None = None
        self._rto_s = RTO_INITIAL_S
        self.frames_rx = 0
        self.frames_retransmitted = 0
        self.bad_acks = 0
        """Acks for frames never sent: the board lost its state (reset) or a peer misbehaves."""

    # counters of the framing layer
    @property
    def invalid_bytes(self) -> int:
        return self._deframer.invalid_bytes

    @property
    def crc_errors(self) -> int:
        return self._deframer.crc_errors

    @property
    def unacked_count(self) -> int:
        return len(self._unacked)

    @property
    def held_count(self) -> int:
        """Frames encoded but not yet sent because the window was full."""
        return len(self._held)

    @property
    def rto_s(self) -> float:
        return self._rto_s

    def probe(self) -> bytes:
        """An empty frame: it consumes no sequence number; the board answers with an empty frame
        carrying its next expected sequence number, which is how the host learns it."""
        return build_frame(self._next_seq, b"")

    def encode(self, *messages: HostMessage, now_s: float = 0.0) -> bytes:
        """Build one numbered frame holding `messages`; return the bytes to write now.

        Returns b"" when the window of unacknowledged frames is full: the frame is held and comes
        out of `data_to_send` once acknowledgements make room.
        """
        if not self.synced:
            raise RuntimeError("BoardHostCodec.encode before the link is synced: send probe()")
        if not messages:
            raise ValueError("encode(): at least one message (empty frames are probes)")
        frame = _Outgoing(self._next_seq, build_frame(self._next_seq, encode_payload(messages)))
        self.last_seq = frame.seq
        self._next_seq = (self._next_seq + 1) % SEQ_MODULO
        if self._held or len(self._unacked) >= MAX_UNACKED_FRAMES:
            self._held.append(frame)
            return b""
        self._mark_sent(frame, now_s)
        return frame.data

    def data_to_send(self, now_s: float = 0.0) -> list[bytes]:
        """Held frames that now fit the window, in order."""
        out: list[bytes] = []
        while self._held and len(self._unacked) < MAX_UNACKED_FRAMES:
            frame = self._held.popleft()
            self._mark_sent(frame, now_s)
            out.append(frame.data)
        return out

    def _mark_sent(self, frame: _Outgoing, now_s: float) -> None:
        frame.sent_s = frame.last_sent_s = now_s
        self._unacked.append(frame)

    def retransmit_deadline_s(self) -> float | None:
        """When the oldest unacknowledged frame times out, or None with nothing outstanding."""
        if not self._unacked:
            return None
        return self._unacked[0].last_sent_s + self._rto_s

    def frames_to_retransmit(self, now_s: float) -> list[bytes]:
        """Go-back-N: if the oldest unacknowledged frame has timed out, every unacknowledged
        frame again, in order (the board dropped everything after the lost one). Backs the
        timeout off (doubling, up to 5 s) until an acknowledgement arrives."""
        deadline = self.retransmit_deadline_s()
        if deadline is None or now_s < deadline:
            return []
        for frame in self._unacked:
            frame.retransmitted = True
            frame.last_sent_s = now_s
        self.frames_retransmitted += len(self._unacked)
        self._rto_s = min(self._rto_s * 2, RTO_MAX_S)
        return [frame.data for frame in self._unacked]

    def feed(self, data: bytes, rx_time_s: float = 0.0) -> None:
        self._deframer.feed(data)
        self._rx_time_s = rx_time_s

    def events(self) -> Iterator[BoardFrame]:
        """Decode buffered frames. Raises BoardProtocolError for a frame whose payload does not
        decode; that frame is dropped whole (its ack too), and iterating again continues."""
        while (frame := self._deframer.next_frame()) is not None:
            ack_seq, payload = frame
            messages = decode_board_payload(payload)
            self.frames_rx += 1
            rx_time_s = self._rx_time_s
            acked, rtt_s = self._on_ack(ack_seq, rx_time_s)
            yield BoardFrame(ack_seq, acked, rtt_s, self._stamp(messages, rx_time_s), rx_time_s)

    def _stamp(
        self, messages: tuple[BoardMessage, ...], rx_time_s: float
    ) -> tuple[BoardMessage, ...]:
        out: list[BoardMessage] = []
        for m in messages:
            if isinstance(m, PressureSample | BoardStatus | BoardEvent):
                board_time_s = self._unwrapper.full_us(m.t_us, rx_time_s) / 1_000_000
                m = replace(m, board_time_s=board_time_s, rx_time_s=rx_time_s)
            out.append(m)
        return tuple(out)

    def _on_ack(self, ack_seq: int, rx_time_s: float) -> tuple[tuple[int, ...], float | None]:
        """Retire the frames `ack_seq` (the board's next expected seq) acknowledges."""
        if not self.synced:
            self.synced = True
            self._next_seq = ack_seq
            return (), None
        if self._unacked:
            oldest = self._unacked[0].seq
            n_acked = (ack_seq - oldest) % SEQ_MODULO
            if n_acked > len(self._unacked):
                self.bad_acks += 1
                return (), None
        else:
            n_acked = 0
            if ack_seq != self._next_seq_sent():
                self.bad_acks += 1
            return (), None
        if n_acked == 0:
            return (), None
        acked = [self._unacked.popleft() for _ in range(n_acked)]
        rtt_s: float | None = None
        newest = acked[-1]
        if not newest.retransmitted:  # Karn: a retransmitted frame's ack times nothing useful
            rtt_s = max(rx_time_s - newest.sent_s, 0.0)
            self._record_rtt(rtt_s)
        else:
            self._rto_s = self._rto_from_estimate()
        return tuple(f.seq for f in acked), rtt_s

    def _next_seq_sent(self) -> int:
        """The seq after the last frame actually sent (held frames have numbers already)."""
        if self._held:
            return self._held[0].seq
        return self._next_seq

    def _record_rtt(self, rtt_s: float) -> None:
        if self.srtt_s is None or self.rttvar_s is None:
            self.srtt_s, self.rttvar_s = rtt_s, rtt_s / 2
        else:
            self.rttvar_s = 0.75 * self.rttvar_s + 0.25 * abs(self.srtt_s - rtt_s)
            self.srtt_s = 0.875 * self.srtt_s + 0.125 * rtt_s
        self._rto_s = self._rto_from_estimate()

    def _rto_from_estimate(self) -> float:
        if self.srtt_s is None or self.rttvar_s is None:
            return RTO_INITIAL_S
        return min(max(self.srtt_s + 4 * self.rttvar_s, RTO_MIN_S), RTO_MAX_S)


# --- device side ------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostFrame:
    """A host frame the board accepted (the expected seq): run `messages` in order, then send
    `nack` if set (decoding stopped at the bad message; those before it stand)."""

    seq: int
    messages: tuple[HostMessage, ...]
    nack: Nack | None


@dataclass(frozen=True)
class AckRequest:
    """An empty probe or a frame out of sequence (discarded): answer with an empty frame so the
    host learns the expected seq without waiting for the next sample."""

    seq: int
    expected_seq: int


_HOST_ARGS: dict[int, struct.Struct] = {
    m.MSG_ID: m.ARGS
    for m in (
        Heartbeat,
        ConfigWatchdog,
        SetPumpRelay,
        SetLight,
        SetCutoff,
        ResetTrip,
        GetStatus,
        Identify,
        ZeroPressure,
    )
}


def _decode_host_message(msg_id: int, args: tuple[Any, ...]) -> HostMessage | NackReason:
    """Range checks that need no board state live here, so firmware copies them from one place."""
    match msg_id:
        case MsgId.HEARTBEAT:
            return Heartbeat()
        case MsgId.CONFIG_WATCHDOG:
            if not WATCHDOG_MIN_MS <= args[0] <= WATCHDOG_MAX_MS:
                return NackReason.OUT_OF_RANGE
            return ConfigWatchdog(args[0])
        case MsgId.SET_PUMP_RELAY:
            if args[0] not in (0, 1):
                return NackReason.OUT_OF_RANGE
            return SetPumpRelay(bool(args[0]))
        case MsgId.SET_LIGHT:
            if args[0] > LIGHT_MAX_PERMILLE:
                return NackReason.OUT_OF_RANGE
            return SetLight(args[0])
        case MsgId.SET_CUTOFF:
            if args[0] == 0:
                return NackReason.OUT_OF_RANGE
            return SetCutoff(args[0] / 100)
        case MsgId.RESET_TRIP:
            return ResetTrip()
        case MsgId.GET_STATUS:
            return GetStatus()
        case MsgId.IDENTIFY:
            return Identify()
        case MsgId.ZERO_PRESSURE:
            return ZeroPressure()
        case _:
            return NackReason.UNKNOWN_MESSAGE


def decode_host_payload(payload: bytes) -> tuple[tuple[HostMessage, ...], Nack | None]:
    out: list[HostMessage] = []
    pos = 0
    while pos < len(payload):
        msg_id = payload[pos]
        layout = _HOST_ARGS.get(msg_id)
        if layout is None:
            return tuple(out), Nack(msg_id, NackReason.UNKNOWN_MESSAGE)
        end = pos + 1 + layout.size
        if end > len(payload):
            return tuple(out), Nack(msg_id, NackReason.MALFORMED)
        decoded = _decode_host_message(msg_id, layout.unpack(payload[pos + 1 : end]))
        if isinstance(decoded, NackReason):
            return tuple(out), Nack(msg_id, decoded)
        out.append(decoded)
        pos = end
    return tuple(out), None


class BoardDeviceCodec:
    """The board end: accepts host frames strictly in sequence, acks in every frame it sends."""

    def __init__(self) -> None:
        self._deframer = Deframer()
        self.expected_seq = 0
        self.frames_rx = 0
        self.frames_out_of_sequence = 0

    @property
    def invalid_bytes(self) -> int:
        return self._deframer.invalid_bytes

    @property
    def crc_errors(self) -> int:
        return self._deframer.crc_errors

    def feed(self, data: bytes) -> None:
        self._deframer.feed(data)

    def events(self) -> Iterator[HostFrame | AckRequest]:
        while (frame := self._deframer.next_frame()) is not None:
            seq, payload = frame
            self.frames_rx += 1
            if not payload:
                yield AckRequest(seq, self.expected_seq)
            elif seq != self.expected_seq:
                self.frames_out_of_sequence += 1
                yield AckRequest(seq, self.expected_seq)
            else:
                self.expected_seq = (self.expected_seq + 1) % SEQ_MODULO
                messages, nack = decode_host_payload(payload)
                yield HostFrame(seq, messages, nack)

    def encode(self, *messages: BoardMessage) -> bytes:
        """One board frame (no messages: a pure ack) carrying the next expected host seq."""
        return build_frame(self.expected_seq, encode_payload(messages))
