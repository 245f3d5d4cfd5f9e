"""The host's end of the I/O board link, with no I/O (after h11): bytes in, typed messages out.

The protocol is defined in docs/protocols/ioboard.md. The framing (frames, CRC-16) and the
protocol's numbers are the firmware's own modules (`firmware.framing`, `firmware.protocol`), which
the host imports; `messages` types the messages in both directions on top of them.

This module is the host's end, `BoardHostCodec`: it numbers its frames, keeps them until the board
acknowledges them, hands them back for go-back-N retransmission, measures the round trip, decodes
the board's frames into `BoardFrame` events and unwraps the board's tick clock. Host code
imports the protocol from here: the messages and the framing helpers it uses are re-exported.

Framing errors (garbage, CRC failures) are counted and skipped, never raised. A frame that passes
its CRC but carries a payload the host cannot decode raises `BoardProtocolError`, because that is
a protocol mismatch rather than noise.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from drivers.ioboard.messages import (
    PRESSURE_RAIL_HIGH_CMMHG,
    PRESSURE_RAIL_LOW_CMMHG,
    BoardEvent,
    BoardIdent,
    BoardMessage,
    BoardStatus,
    ConfigWatchdog,
    EventKind,
    GetStatus,
    Heartbeat,
    HostMessage,
    Identify,
    MsgId,
    Nack,
    NackReason,
    PressureSample,
    ResetTrip,
    ResistanceTrip,
    SetCutoff,
    SetFlow,
    SetLight,
    SetPumpRelay,
    Trip,
    ZeroPressure,
    encode_payload,
)
from firmware.framing import SEQ_MODULO, T_US_MODULO, Deframer, build_frame, crc16

__all__ = [
    "MAX_UNACKED_FRAMES",
    "PRESSURE_RAIL_HIGH_CMMHG",
    "PRESSURE_RAIL_LOW_CMMHG",
    "RTO_INITIAL_S",
    "RTO_MAX_S",
    "RTO_MIN_S",
    "BoardEvent",
    "BoardFrame",
    "BoardHostCodec",
    "BoardIdent",
    "BoardMessage",
    "BoardProtocolError",
    "BoardStatus",
    "ConfigWatchdog",
    "EventKind",
    "GetStatus",
    "Heartbeat",
    "HostMessage",
    "Identify",
    "MsgId",
    "Nack",
    "NackReason",
    "PressureSample",
    "ResetTrip",
    "ResistanceTrip",
    "SetCutoff",
    "SetFlow",
    "SetLight",
    "SetPumpRelay",
    "Trip",
    "ZeroPressure",
    "build_frame",
    "crc16",
    "decode_board_payload",
    "encode_payload",
]

MAX_UNACKED_FRAMES = 15
"""With 4-bit sequence numbers an ack is unambiguous only while fewer than 16 frames are out."""

RTO_MIN_S = 0.025
RTO_MAX_S = 5.0
RTO_INITIAL_S = 0.1
"""Before the first round-trip sample: generous for a USB CDC link whose RTT is ~1 ms."""


class BoardProtocolError(ValueError):
    """Bytes that passed the framing but do not decode; `data` holds the offending bytes."""

    def __init__(self, message: str, data: bytes = b"") -> None:
        super().__init__(message)
        self.data = data


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
    if msg_id == MsgId.RESISTANCE_TRIP:
        return ResistanceTrip(args[0], args[1], args[2] / 100, args[3] / 1000, args[4] / 100)
    if msg_id == MsgId.IDENT:
        serial = args[4].rstrip(b"\0")
        return BoardIdent(args[0], (args[1], args[2], args[3]), serial.decode("ascii"))
    return Nack(args[0], NackReason(args[1]))


_BOARD_ARGS: dict[int, str] = {
    m.MSG_ID: m.ARGS
    for m in (PressureSample, BoardStatus, BoardEvent, BoardIdent, Nack, ResistanceTrip)
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
        end = pos + 1 + struct.calcsize(layout)
        if end > len(payload):
            raise BoardProtocolError(
                f"board message 0x{msg_id:02x} truncated: {len(payload) - pos - 1} of "
                f"{struct.calcsize(layout)} argument bytes",
                payload,
            )
        try:
            out.append(_decode_board_message(msg_id, struct.unpack(layout, payload[pos + 1 : end])))
        except (ValueError, UnicodeDecodeError) as exc:
            raise BoardProtocolError(f"board message 0x{msg_id:02x}: {exc}", payload) from exc
        pos = end
    return tuple(out)


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
    """Extends the board's microsecond clock, MicroPython's ticks_us (it wraps every 2^30 us,
    17.9 minutes).

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
            wraps = round((rx_us - raw_us) / T_US_MODULO)
            full = raw_us + wraps * T_US_MODULO
        else:
            half = T_US_MODULO // 2
            delta = ((raw_us - self._last_raw + half) % T_US_MODULO) - half
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
            elif isinstance(m, ResistanceTrip):
                m = replace(
                    m,
                    trigger_board_time_s=self._unwrapper.full_us(m.trigger_t_us, rx_time_s) / 1e6,
                    relay_open_board_time_s=(
                        self._unwrapper.full_us(m.relay_open_t_us, rx_time_s) / 1e6
                    ),
                    rx_time_s=rx_time_s,
                )
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
