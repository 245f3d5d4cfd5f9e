"""The board's end of the I/O board link in typed form, for the host's tests.

The board itself runs `firmware.board.Board`, which decodes host frames with the same pieces:
`firmware.framing` (frames), `firmware.link` (frames accepted strictly in sequence) and
`firmware.protocol` (layouts and the range checks of docs/protocols/ioboard.md section 4). This
module puts the typed messages of `messages` on top, so the host's tests can check what the board
would accept without a HAL.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from drivers.ioboard.messages import (
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
    SetFlow,
    SetLight,
    SetPumpRelay,
    ZeroPressure,
    encode_payload,
)
from firmware.framing import Deframer, build_frame
from firmware.link import DeviceLink
from firmware.protocol import HOST_ARGS, SET_FLOW, check_host_arg, check_set_flow


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


def _typed(msg_id: int, value: int) -> HostMessage:
    if msg_id == MsgId.HEARTBEAT:
        return Heartbeat()
    if msg_id == MsgId.CONFIG_WATCHDOG:
        return ConfigWatchdog(value)
    if msg_id == MsgId.SET_PUMP_RELAY:
        return SetPumpRelay(bool(value))
    if msg_id == MsgId.SET_LIGHT:
        return SetLight(value)
    if msg_id == MsgId.SET_CUTOFF:
        return SetCutoff(value / 100)
    if msg_id == MsgId.RESET_TRIP:
        return ResetTrip()
    if msg_id == MsgId.GET_STATUS:
        return GetStatus()
    if msg_id == MsgId.IDENTIFY:
        return Identify()
    return ZeroPressure()


def decode_host_payload(payload: bytes) -> tuple[tuple[HostMessage, ...], Nack | None]:
    out: list[HostMessage] = []
    pos = 0
    while pos < len(payload):
        msg_id = payload[pos]
        layout = HOST_ARGS.get(msg_id)
        if layout is None:
            return tuple(out), Nack(msg_id, NackReason.UNKNOWN_MESSAGE)
        end = pos + 1 + struct.calcsize(layout)
        if end > len(payload):
            return tuple(out), Nack(msg_id, NackReason.MALFORMED)
        if msg_id == SET_FLOW:
            flow, limit, short_ms, long_ms, persistence = struct.unpack(
                layout, payload[pos + 1 : end]
            )
            reason = check_set_flow(flow, limit, short_ms, long_ms, persistence)
            if reason:
                return tuple(out), Nack(msg_id, NackReason(reason))
            out.append(SetFlow(flow / 1000, limit / 100, short_ms, long_ms, persistence))
            pos = end
            continue
        value = struct.unpack(layout, payload[pos + 1 : end])[0] if end > pos + 1 else 0
        reason = check_host_arg(msg_id, value)
        if reason:
            return tuple(out), Nack(msg_id, NackReason(reason))
        out.append(_typed(msg_id, value))
        pos = end
    return tuple(out), None


class BoardDeviceCodec:
    """The board end: accepts host frames strictly in sequence, acks in every frame it sends."""

    def __init__(self) -> None:
        self._deframer = Deframer()
        self.link = DeviceLink()

    @property
    def expected_seq(self) -> int:
        return self.link.expected_seq

    @expected_seq.setter
    def expected_seq(self, seq: int) -> None:
        self.link.expected_seq = seq

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
            if self.link.accept(seq, len(payload)):
                messages, nack = decode_host_payload(payload)
                yield HostFrame(seq, messages, nack)
            else:
                yield AckRequest(seq, self.expected_seq)

    def encode(self, *messages: BoardMessage) -> bytes:
        """One board frame (no messages: a pure ack) carrying the next expected host seq."""
        return build_frame(self.expected_seq, encode_payload(messages))
