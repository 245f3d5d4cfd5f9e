"""The board's end of the I/O board link: host frames in, strictly in sequence; board frames out.

Part of the board's side of the protocol (docs/protocols/ioboard.md sections 3 and 4), with
`framing` and `messages`: what the board's firmware shares with the host, and what the board
emulator (drivers/sim/ioboard_device.py) runs. Imports: the standard library, `framing` and
`messages` only. The range checks that need no board state live here, so a firmware port has one
place to copy them from. What this module still needs of CPython, for issue 12 (MicroPython on
the board, checked with mpy-cross) to settle: `dataclasses` (HostFrame, AckRequest), the messages'
enums, and the annotations (`collections.abc`, `from __future__ import annotations`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from drivers.ioboard.framing import SEQ_MODULO, Deframer, build_frame
from drivers.ioboard.messages import (
    LIGHT_MAX_PERMILLE,
    WATCHDOG_MAX_MS,
    WATCHDOG_MIN_MS,
    BoardMessage,
    ConfigWatchdog,
    GetStatus,
    Heartbeat,
    HostMessage,
    Identify,
    MsgId,
    Nack,
    NackReason,
    ResetTrip,
    SetCutoff,
    SetLight,
    SetPumpRelay,
    ZeroPressure,
    encode_payload,
)


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


_HOST_ARGS: dict[int, str] = {
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


def _decode_host_message(msg_id: int, args: tuple[int, ...]) -> HostMessage | NackReason:
    """Range checks that need no board state live here, so firmware copies them from one place.

    An if-chain rather than `match`, which MicroPython does not have."""
    if msg_id == MsgId.HEARTBEAT:
        return Heartbeat()
    if msg_id == MsgId.CONFIG_WATCHDOG:
        if not WATCHDOG_MIN_MS <= args[0] <= WATCHDOG_MAX_MS:
            return NackReason.OUT_OF_RANGE
        return ConfigWatchdog(args[0])
    if msg_id == MsgId.SET_PUMP_RELAY:
        if args[0] not in (0, 1):
            return NackReason.OUT_OF_RANGE
        return SetPumpRelay(bool(args[0]))
    if msg_id == MsgId.SET_LIGHT:
        if args[0] > LIGHT_MAX_PERMILLE:
            return NackReason.OUT_OF_RANGE
        return SetLight(args[0])
    if msg_id == MsgId.SET_CUTOFF:
        if args[0] == 0:
            return NackReason.OUT_OF_RANGE
        return SetCutoff(args[0] / 100)
    if msg_id == MsgId.RESET_TRIP:
        return ResetTrip()
    if msg_id == MsgId.GET_STATUS:
        return GetStatus()
    if msg_id == MsgId.IDENTIFY:
        return Identify()
    if msg_id == MsgId.ZERO_PRESSURE:
        return ZeroPressure()
    return NackReason.UNKNOWN_MESSAGE


def decode_host_payload(payload: bytes) -> tuple[tuple[HostMessage, ...], Nack | None]:
    out: list[HostMessage] = []
    pos = 0
    while pos < len(payload):
        msg_id = payload[pos]
        layout = _HOST_ARGS.get(msg_id)
        if layout is None:
            return tuple(out), Nack(msg_id, NackReason.UNKNOWN_MESSAGE)
        end = pos + 1 + struct.calcsize(layout)
        if end > len(payload):
            return tuple(out), Nack(msg_id, NackReason.MALFORMED)
        decoded = _decode_host_message(msg_id, struct.unpack(layout, payload[pos + 1 : end]))
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
